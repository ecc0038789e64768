import type { MongoFilter } from './compile/element';
import { badRequest } from '../fhir/outcome';
import { PageTokens } from '../fhir/page-token';
import type { CurrentDocument } from '../store/documents';
import { encodeCode, ownValue, sortPath, SORT_KEY } from './keys';
import type { SortKey } from './parse';
import { BUILT_IN, type SearchParameterRegistry } from './registry';

/** One key of the sort order, as a document field. The tie-breaker (type, _id) is implicit. */
export interface SortField {
  /** The _sort parameter as written, for the self link. */
  code: string;
  path: string;
  descending: boolean;
}

export type SortValue = string | number | Date | null;

/**
 * Where a page starts or ends: the sort values and tie-breaker of the last (next) or first (previous)
 * resource of the page, bound to the query by a hash so that a token cannot be replayed on another one.
 */
export interface Cursor {
  query: string;
  values: SortValue[];
  type: string;
  id: string;
  direction: 'next' | 'previous';
  /** The total of the first page, carried so that later pages can state it without counting again. */
  total?: number;
}

interface EncodedCursor {
  q: string;
  k: (string | number | { d: string } | null)[];
  t: string;
  i: string;
  p?: 1;
  n?: number;
}

export function encodeCursor(tokens: PageTokens, cursor: Cursor): string {
  const encoded: EncodedCursor = {
    q: cursor.query,
    k: cursor.values.map((v) => (v instanceof Date ? { d: v.toISOString() } : v)),
    t: cursor.type,
    i: cursor.id,
  };
  if (cursor.direction === 'previous') encoded.p = 1;
  if (cursor.total !== undefined) encoded.n = cursor.total;
  return tokens.encode(encoded);
}

export function decodeCursor(tokens: PageTokens, token: string, query: string, parameter: string): Cursor {
  const encoded = tokens.decode<EncodedCursor>(token, parameter);
  if (encoded.q !== query) throw badRequest(`The ${parameter} token belongs to another search`, parameter);
  const cursor: Cursor = {
    query: encoded.q,
    values: encoded.k.map((v) => (v !== null && typeof v === 'object' ? new Date(v.d) : v)),
    type: encoded.t,
    id: encoded.i,
    direction: encoded.p ? 'previous' : 'next',
  };
  if (encoded.n !== undefined) cursor.total = encoded.n;
  return cursor;
}

/** The sort fields of `_sort` for the searched types: any parameter of theirs, _id and _lastUpdated. */
export function compileSort(registry: SearchParameterRegistry, types: string[], keys: SortKey[]): SortField[] {
  return keys
    .filter((key) => key.code !== '_id')
    .map((key) => {
      if (key.code === '_lastUpdated') return { code: key.code, path: 'ts', descending: key.descending };
      for (const type of types) {
        const param = registry.get(type, key.code);
        if (!param || BUILT_IN.has(key.code) || param.type === 'composite' || param.type === 'special') {
          throw badRequest(`Cannot sort ${type} by "${key.code}"`, '_sort');
        }
      }
      return { code: key.code, path: sortPath(key.code), descending: key.descending };
    });
}

/** The tie-breaker direction: that of the last sort key, so `-date` pages newest-first throughout. */
function tieDescending(fields: SortField[]): boolean {
  return fields.length ? fields[fields.length - 1].descending : false;
}

/** A MongoDB sort as built here: field paths in order, 1 ascending or -1 descending. */
export type SortSpec = Record<string, 1 | -1>;

export function mongoSort(fields: SortField[], reverse: boolean): SortSpec {
  const sort: SortSpec = {};
  for (const f of fields) sort[f.path] = f.descending !== reverse ? -1 : 1;
  sort._id = tieDescending(fields) !== reverse ? -1 : 1;
  return sort;
}

export function sortValueOf(doc: CurrentDocument, field: SortField): SortValue {
  if (field.path === 'ts') return doc.ts;
  const sort = ownValue(doc.sp, SORT_KEY) as Record<string, unknown> | undefined;
  return (ownValue(sort, encodeCode(field.code)) as SortValue | undefined) ?? null;
}

/** "Comes after `value` in this direction" for one field, with MongoDB's order (null lowest). */
function beyond(path: string, value: SortValue, descending: boolean): MongoFilter | undefined {
  if (value === null) return descending ? undefined : { [path]: { $ne: null } };
  if (descending) return { $or: [{ [path]: { $lt: value } }, { [path]: null }] };
  return { [path]: { $gt: value } };
}

/**
 * The keyset condition "after the cursor" in the order of `fields` (reversed when paging backwards):
 * (k1 > v1) or (k1 = v1 and k2 > v2) ... or (all equal and (type, _id) after the cursor's). The
 * tie-breaker is (type, id) so that system-level searches merge several collections in one order.
 */
export function keysetFilter(fields: SortField[], cursor: Cursor, type: string, reverse: boolean): MongoFilter {
  const alternatives: MongoFilter[] = [];
  const equal: MongoFilter[] = [];
  fields.forEach((field, i) => {
    const condition = beyond(field.path, cursor.values[i], field.descending !== reverse);
    if (condition) alternatives.push(equal.length ? { $and: [...equal, condition] } : condition);
    equal.push({ [field.path]: cursor.values[i] });
  });
  const tieDown = tieDescending(fields) !== reverse;
  let tie: MongoFilter | undefined;
  if (type === cursor.type) tie = { _id: { [tieDown ? '$lt' : '$gt']: cursor.id } };
  else if (type > cursor.type !== tieDown) tie = {};
  if (tie) alternatives.push(equal.length ? { $and: [...equal, tie] } : tie);
  if (!alternatives.length) return { _id: { $in: [] } };
  return alternatives.length === 1 ? alternatives[0] : { $or: alternatives };
}

function compareValues(a: SortValue, b: SortValue): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  const x = a instanceof Date ? a.getTime() : a;
  const y = b instanceof Date ? b.getTime() : b;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The same order as mongoSort, in memory, for merging the pages of several collections. */
export function compareDocuments(
  fields: SortField[],
  a: { doc: CurrentDocument; type: string },
  b: { doc: CurrentDocument; type: string },
  reverse: boolean,
): number {
  for (const field of fields) {
    const c = compareValues(sortValueOf(a.doc, field), sortValueOf(b.doc, field));
    if (c) return field.descending !== reverse ? -c : c;
  }
  const tie = a.type === b.type ? compareValues(a.doc._id, b.doc._id) : compareValues(a.type, b.type);
  return tieDescending(fields) !== reverse ? -tie : tie;
}
