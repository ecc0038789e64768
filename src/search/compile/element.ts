import type { Document, Filter } from 'mongodb';
import type { CurrentDocument } from '../../store/documents';
import { SINGLE } from '../keys';

/**
 * A MongoDB filter under construction. Filters here use dotted paths into `sp`, which the driver's
 * Filter<T> cannot type, so they are plain documents until handed to find() via asFilter().
 */
export type MongoFilter = Document;

export function asFilter(filter: MongoFilter): Filter<CurrentDocument> {
  return filter as Filter<CurrentDocument>;
}

/** Conditions on the fields of one stored value (element-relative keys: `{lo: {$gte: d}}`). */
export type Conjunction = Record<string, unknown>;
/** Alternatives: a value matches if one conjunction holds for one stored value. */
export type Disjunction = Conjunction[];

function isMultiOperator(condition: unknown): boolean {
  return (
    condition !== null &&
    typeof condition === 'object' &&
    !(condition instanceof Date) &&
    !(condition instanceof RegExp) &&
    Object.keys(condition).length > 1
  );
}

/**
 * How many positions of a multi-valued parameter a multi-field condition checks on engines without
 * $elemMatch on sub-documents (FerretDB 1.24 answers "unknown operator"). Values past this position
 * are still found by one-field conditions; only conditions on two fields of one value miss them.
 */
export const POSITIONAL_LIMIT = 12;

/**
 * One conjunction against the values at `path`. A single one-operator condition is a dotted path
 * (index-friendly, and right for arrays and single values alike). Several conditions must hold for the
 * same value: single values (stored unwrapped, marked SINGLE, so that compound indexes work; see
 * extract.ts) take dotted paths; arrays take $elemMatch where the engine has it, else positional paths.
 */
export function onElement(path: string, conjunction: Conjunction, elemMatch = true): MongoFilter {
  const keys = Object.keys(conjunction);
  if (keys.length === 1 && !isMultiOperator(conjunction[keys[0]])) {
    return { [`${path}.${keys[0]}`]: conjunction[keys[0]] };
  }
  const at = (prefix: string, extra: MongoFilter = {}): MongoFilter => {
    const filter: MongoFilter = { ...extra };
    for (const key of keys) filter[`${prefix}.${key}`] = conjunction[key];
    return filter;
  };
  const single = at(path, { [`${path}.${SINGLE}`]: true });
  if (elemMatch) return { $or: [single, { [path]: { $elemMatch: conjunction } }] };
  const positions = Array.from({ length: POSITIONAL_LIMIT }, (_, i) => at(`${path}.${i}`));
  return { $or: [single, ...positions] };
}

export function anyOf(filters: MongoFilter[]): MongoFilter {
  if (filters.length === 1) return filters[0];
  // `$or` of one-field equalities on the same path is `$in`, which MongoDB plans better.
  const keys = filters.map((f) => Object.keys(f));
  if (
    keys.every((k) => k.length === 1 && k[0] === keys[0][0] && !k[0].startsWith('$')) &&
    filters.every((f) => typeof f[keys[0][0]] === 'string')
  ) {
    return { [keys[0][0]]: { $in: filters.map((f) => f[keys[0][0]] as string) } };
  }
  return { $or: filters };
}

export function allOf(filters: MongoFilter[]): MongoFilter {
  if (filters.includes(NOTHING)) return NOTHING;
  if (filters.length === 0) return {};
  if (filters.length === 1) return filters[0];
  return { $and: filters };
}

/** A filter that matches nothing (an `$in` of no values), for references that resolve to no resource. */
export const NOTHING: MongoFilter = { _id: { $in: [] } };

/** Prefixes each key of a conjunction (composite components are stored as "0c", "1v", ...). */
export function prefixKeys(conjunction: Conjunction, prefix: string): Conjunction {
  return Object.fromEntries(Object.entries(conjunction).map(([k, v]) => [`${prefix}${k}`, v]));
}
