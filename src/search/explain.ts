import type { Db, IndexDescription } from 'mongodb';
import { TYPE_INDEXES } from '../store/resource-store';
import type { MongoFilter } from './compile/element';
import type { SortSpec } from './paging';
import { searchIndexes } from './indexes';
import type { SearchParameterRegistry } from './registry';
import { compileSearch, pageQuery, type SearchOptions } from './search';

/** What one type-level search sends to MongoDB, and the index meant to answer it. */
export interface ExplainedSearch {
  type: string;
  filter: MongoFilter;
  sort: SortSpec;
  /** Undefined when no index applies: MongoDB would scan the collection (a bug for a benchmark query). */
  plannedIndex?: string;
}

/**
 * What the embedded engine's SQLite plan says when the pre-filter is answered from an index: a search
 * (not a scan) of a multikey side table (tools/ferretdb/patch/paths_medsfhir.go), or of the _id index.
 */
export const ENGINE_INDEXED_PLAN =
  /SEARCH [a-z0-9_]+_(mk_[0-9a-f]+ USING (COVERING INDEX|PRIMARY KEY)|[0-9a-f]+ USING INDEX [a-z0-9_]+__id_)/i;

/** MongoDB names it `_id_`; `_id` here, as the issue and the index list of the store say it. */
const ID_INDEX: IndexDescription = { key: { _id: 1 }, name: '_id' };

/** Operators an index can bound: equality, membership and ranges ($ne, $exists, $nor, $not cannot). */
const BOUNDING = new Set(['$eq', '$in', '$gt', '$gte', '$lt', '$lte']);
const EQUALITY = new Set(['$eq', '$in']);

type Bound = 'equality' | 'range';

/** An anchored, case-sensitive regex: MongoDB (and the embedded engine) bound it as a prefix range. */
function prefixRegex(condition: Record<string, unknown>): boolean {
  const options = condition.$options ?? '';
  return typeof condition.$regex === 'string' && condition.$regex.startsWith('^') && options === '';
}

function boundOf(condition: unknown): Bound | undefined {
  if (condition instanceof RegExp) return condition.source.startsWith('^') && !condition.flags ? 'range' : undefined;
  if (condition === null || typeof condition !== 'object' || condition instanceof Date) return 'equality';
  const operators = Object.keys(condition);
  // A sub-document without operators is an equality on the whole value.
  if (!operators.some((op) => op.startsWith('$'))) return 'equality';
  if (prefixRegex(condition as Record<string, unknown>)) return 'range';
  if (!operators.length || !operators.every((op) => BOUNDING.has(op))) return undefined;
  return operators.every((op) => EQUALITY.has(op)) ? 'equality' : 'range';
}

/**
 * The fields the filter bounds at its top level (directly or inside top-level `$and`s), which is
 * where MongoDB derives index bounds from; conditions under `$or`/`$nor` or on array positions are
 * residual filters applied after the index scan.
 */
export function boundedFields(filter: MongoFilter): Map<string, Bound> {
  const fields = new Map<string, Bound>();
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(value)) {
      for (const part of value as MongoFilter[]) {
        for (const [field, bound] of boundedFields(part)) {
          if (fields.get(field) !== 'equality') fields.set(field, bound);
        }
      }
    } else if (!key.startsWith('$')) {
      const bound = boundOf(value);
      if (bound && fields.get(key) !== 'equality') fields.set(key, bound);
    }
  }
  return fields;
}

/**
 * Whether the index, after its leading equality-bound fields, lists the sort's fields in the sort's
 * order with all directions the same or all reversed, so MongoDB reads it in order and stops at the
 * limit instead of sorting every match.
 */
function providesSort(keys: [string, number][], bounds: Map<string, Bound>, sort: SortSpec): boolean {
  let start = 0;
  while (start < keys.length && bounds.get(keys[start][0]) === 'equality') start++;
  const wanted = Object.entries(sort);
  if (start + wanted.length > keys.length) return false;
  const sign = keys[start][1] === wanted[0][1] ? 1 : -1;
  return wanted.every(([path, dir], i) => keys[start + i][0] === path && keys[start + i][1] === sign * dir);
}

/** The indexes of a type's collection, as the store and the search module create them. */
export function collectionIndexes(type: string): IndexDescription[] {
  return [...searchIndexes(type), ...TYPE_INDEXES, ID_INDEX];
}

/**
 * The index MongoDB can use for this filter and sort: the one whose leading key fields the filter
 * bounds longest (ties go to one that also provides the sort, then to the first declared), or one
 * that provides a requested sort. The `_id` tie-breaker alone is not a requested sort: walking the
 * whole `_id` index to filter every document is a scan by another name.
 */
export function plannedIndex(type: string, filter: MongoFilter, sort: SortSpec): string | undefined {
  const bounds = boundedFields(filter);
  const requestedSort = Object.keys(sort).some((path) => path !== '_id');
  let best: { name: string; prefix: number; sorted: boolean } | undefined;
  for (const index of collectionIndexes(type)) {
    const keys = Object.entries(index.key) as [string, number][];
    let prefix = 0;
    while (prefix < keys.length && bounds.has(keys[prefix][0])) prefix++;
    const sorted = providesSort(keys, bounds, sort);
    if (prefix === 0 && !(sorted && requestedSort)) continue;
    if (!best || prefix > best.prefix || (prefix === best.prefix && sorted && !best.sorted)) {
      best = { name: index.name ?? Object.keys(index.key).join('_'), prefix, sorted };
    }
  }
  return best?.name;
}

/**
 * Compiles a type-level search exactly as search() does (parameters, sort, and the keyset condition
 * of a `_cursor` page) and names the index meant to answer it. No query runs unless compiling needs
 * one (chains, `_has`, `:in` against stored ValueSets).
 */
export async function explainSearch(
  db: Db,
  registry: SearchParameterRegistry,
  type: string,
  query: string,
  options: SearchOptions,
): Promise<ExplainedSearch> {
  const compiled = await compileSearch(
    db,
    { resourceType: type, params: new URLSearchParams(query), baseUrl: 'http://explain/fhir' },
    registry,
    options,
  );
  const { filter, sort } = pageQuery(compiled.filters.get(type) ?? {}, compiled.fields, compiled.cursor, type);
  const explained: ExplainedSearch = { type, filter, sort };
  const index = plannedIndex(type, filter, sort);
  if (index) explained.plannedIndex = index;
  return explained;
}
