/**
 * National Drug Codes as pharmacies send them. An NDC names a labeler, a product and a package; the same
 * package is written as 10 digits in three hyphenated segments (4-4-2, 5-3-2 or 5-4-1) or as 11 digits in
 * the 5-4-2 layout that claims use, with or without hyphens. A product NDC is the first two segments.
 * Classes list product NDCs, so every package size of a listed product is recognised.
 */

export const NDC = 'http://hl7.org/fhir/sid/ndc';

const SEGMENT_WIDTHS = [5, 4, 2];

/**
 * The 9-digit labeler and product part of an NDC in the 5-4-2 layout, from a package or a product code in
 * any of its written forms; undefined when the code is not an NDC or cannot be told apart: 10 digits
 * without hyphens could be 4-4-2, 5-3-2 or 5-4-1, and padding at the wrong place names another product.
 */
export function ndcProductKey(code: string): string | undefined {
  const trimmed = code.trim();
  if (/^\d{11}$/.test(trimmed)) return trimmed.slice(0, 9);
  if (/^\d{9}$/.test(trimmed)) return trimmed;
  const segments = trimmed.split('-');
  if (segments.length < 2 || segments.length > 3 || segments.some((s) => !/^\d+$/.test(s))) return undefined;
  // Each segment is as wide as in 5-4-2 or one digit short of it, and at most one segment is short.
  let short = 0;
  for (let i = 0; i < segments.length; i++) {
    const missing = SEGMENT_WIDTHS[i] - segments[i].length;
    if (missing < 0 || missing > 1) return undefined;
    short += missing;
  }
  if (short > 1) return undefined;
  return segments[0].padStart(5, '0') + segments[1].padStart(4, '0');
}
