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
