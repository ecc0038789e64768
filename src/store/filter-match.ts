import sift, { $in, createEqualsOperation, type Query } from 'sift';

type Options = Parameters<typeof $in>[2];

/** The shortest `$in` of strings tested through a set. */
const SET_MIN = 16;

/**
 * sift's `$in`, with a list of strings tested through a set: sift makes a tester per element when it
 * compiles a query (a practitioner's access filter lists the compartments of thousands of patients:
 * about 3.5 ms for 2,000 of them, on every read), then tries them in turn.
 */
function inOperation(params: unknown, ownerQuery: Query<unknown>, options: Options, name: string) {
  if (!Array.isArray(params) || params.length < SET_MIN || !params.every((p) => typeof p === 'string')) {
    return $in(params, ownerQuery, options, name);
  }
  const set = new Set<string>(params);
  return createEqualsOperation((value: unknown) => typeof value === 'string' && set.has(value), ownerQuery, options);
}

/** A test of stored documents against a MongoDB filter, in memory (sift, with a faster `$in`). */
export function filterMatcher(filter: object): (doc: unknown) => boolean {
  return sift(filter as Query<unknown>, { operations: { $in: inOperation } });
}
