/**
 * Where each search parameter lives in a stored document. The `sp` object is keyed by parameter code;
 * codes are encoded because MongoDB/FerretDB keys must not contain "." nor start with "$" (R4 codes
 * never do, custom SearchParameters might).
 */
export function encodeCode(code: string): string {
  return code.replace(/%/g, '%25').replace(/\./g, '%2E').replace(/^\$/, '%24');
}

/** Path of a parameter's values: `sp.<code>`. */
export function valuePath(code: string): string {
  return `sp.${encodeCode(code)}`;
}

/** Key under `sp` holding one scalar per parameter used for _sort (see extract.ts for why). */
export const SORT_KEY = '_sort';

export function sortPath(code: string): string {
  return `sp.${SORT_KEY}.${encodeCode(code)}`;
}

/**
 * Marker set on a parameter's value when the resource has exactly one (stored as an object, not an
 * array), so that conditions on two fields of one value can be written without $elemMatch for the
 * single-valued case (see compile/element.ts).
 */
export const SINGLE = 'one';

/**
 * Marker on a date value that spans more than SHORT_SPAN_MS (a month or a year, a long Period, an open
 * one): `{..., span: 'wide'}`. Every other value ends within a day of its start, so a search can bound
 * those by their start on both sides, which an index answers (compile/date-ranges.ts). A string, so
 * that the embedded engine's side tables index it.
 */
export const SPAN_KEY = 'span';
export const WIDE = 'wide';
export const SHORT_SPAN_MS = 86_400_000;

/**
 * Longest string kept in a search index value; longer ones are indexed by their first characters, and
 * search values are cut the same way, so that one resource's giant text cannot make an index (and
 * every scan that decodes the document) giant. Not a setting: changing it would need a reindex.
 */
export const INDEX_VALUE_MAX_LENGTH = 256;

/** A string as the index keeps it (never ending in half a surrogate pair). */
export function indexText(value: string): string {
  if (value.length <= INDEX_VALUE_MAX_LENGTH) return value;
  const cut = value.slice(0, INDEX_VALUE_MAX_LENGTH);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/** A member of a stored `sp` object, own properties only (a runtime parameter may be named `constructor`). */
export function ownValue(container: Record<string, unknown> | undefined, key: string): unknown {
  return container !== undefined && Object.hasOwn(container, key) ? container[key] : undefined;
}
