import type { Db, IndexDescription } from 'mongodb';
import { valuePath } from './keys';
import type { ParamType, SearchParam } from './registry';

/**
 * The stored value fields a parameter's searches condition on (compile/values.ts), for its indexes:
 * the default string search's normalized text, a token's system|code and code, a reference, a date's
 * bounds, a URI. Modifiers that no index bounds (:contains, :text) and composites are left out.
 */
const FIELDS: Partial<Record<ParamType, string[]>> = {
  string: ['n'],
  token: ['sc', 'c'],
  reference: ['r'],
  date: ['lo', 'hi'],
  uri: ['u'],
};

/**
 * The collections of a parameter's bases. `Resource` and `DomainResource` name every type: indexing
 * every collection for one parameter is left to the embedded engine's background builds on first use.
 */
function concreteBases(param: SearchParam): string[] {
  return param.base.filter((type) => type !== 'Resource' && type !== 'DomainResource');
}

/** The single-field indexes of a runtime parameter on one type's collection. */
export function searchParameterIndexes(param: SearchParam): IndexDescription[] {
  return (FIELDS[param.type] ?? []).map((field) => ({
    key: { [`${valuePath(param.code)}.${field}`]: 1 },
    name: `sp_rt_${param.code}_${field}`,
  }));
}

/**
 * Builds the indexes of a runtime SearchParameter on each of its base types, and returns when they
 * are ready (on the embedded engine: each path's side table backfilled), so that the reindex can
 * call it before it marks the parameter searchable; searches before that are answered without the
 * index, never waiting for it. Idempotent: an index that exists costs a round trip.
 */
export async function ensureSearchParameterIndexes(db: Db, param: SearchParam): Promise<void> {
  for (const type of concreteBases(param)) {
    for (const { key, ...options } of searchParameterIndexes(param)) {
      await db.collection(type).createIndex(key as Record<string, 1 | -1>, options);
    }
  }
}

/** Drops them again, for a runtime parameter that was deleted or whose code or bases changed. */
export async function dropSearchParameterIndexes(db: Db, param: SearchParam): Promise<void> {
  for (const type of concreteBases(param)) {
    for (const { name } of searchParameterIndexes(param)) {
      await db
        .collection(type)
        .dropIndex(name as string)
        .catch(() => undefined); // never created, or the collection is gone: nothing to drop
    }
  }
}
