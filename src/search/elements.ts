/**
 * The shapes stored under `sp.<code>`, one object per value (field names are short because they are
 * repeated in every document). Every multi-part match that a query needs is a single field here
 * (`sc` = "system|code", `ot` = "typeSystem|typeCode|value", `ident` = "system|value"), so most
 * conditions are one-field equalities that a compound MongoDB index can answer.
 */
export interface StringElement {
  /** normalised (lower case, accents removed) */
  n: string;
  /** exact, for :exact */
  e: string;
}

export interface TokenElement {
  s?: string;
  c?: string;
  /** "system|code", or "|code" when there is no system */
  sc?: string;
  /** normalised display / text, for :text */
  x?: string;
  /** identifier type and value, "typeSystem|typeCode|value", for :of-type */
  ot?: string;
}

export interface ReferenceElement {
  /** "Type/id" for relative references */
  r?: string;
  /** the id alone, for `subject=123` */
  i?: string;
  /** absolute URL, urn or canonical URL (without its |version) */
  u?: string;
  /** canonical version */
  uv?: string;
  /** "system|value" of Reference.identifier, for :identifier */
  ident?: string;
}

export interface DateElement {
  lo: Date;
  /** exclusive */
  hi: Date;
  /** Set when hi - lo is more than a day (keys.ts, SPAN_KEY). */
  span?: 'wide';
}

export interface NumberElement {
  v: number;
}

export interface QuantityElement {
  v: number;
  s?: string;
  c?: string;
  /** unit as written */
  u?: string;
  /** value and code in UCUM base units, when UCUM can convert */
  cv?: number;
  cc?: string;
}

export interface UriElement {
  u: string;
}

/** Any stored value object (the interfaces above, and composite combinations of them). */
export type IndexElement = { [field: string]: string | number | Date | boolean | undefined };

/** Earliest and latest instants a stored date range may take (open Period ends). */
export const MIN_DATE = new Date('0001-01-01T00:00:00.000Z');
export const MAX_DATE = new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999));
