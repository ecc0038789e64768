import { ucumUtils } from 'fhirpath';

export const UCUM = 'http://unitsofmeasure.org';

interface Validation {
  status: 'valid' | 'invalid' | 'error';
  ucumCode: string | null;
  msg: string[];
}
interface BaseUnits {
  status: string;
  unitToExp?: Record<string, number>;
}
/** The part of @lhncbc/ucum-lhc we use; fhirpath (which depends on it) exports its instance as `any`. */
interface UcumUtils {
  validateUnitString(unit: string, suggest: boolean): Validation;
  convertToBaseUnits(unit: string, value: number): BaseUnits;
}

/** What a UCUM code is: its problem when invalid, else its dimension (base units and exponents). */
interface Verdict {
  readonly problem?: string;
  /** "g", "m-3.g", "" for dimensionless; undefined when UCUM cannot reduce it (arbitrary units: [iU]). */
  readonly dimension?: string;
}

/**
 * Parsing a unit with ucum-lhc takes tens of microseconds; the codes a server sees are few, so each
 * verdict is kept. The cache is bounded (a client sending endless distinct codes must not grow it
 * forever): when full it starts again, which costs only re-parsing the codes still in use.
 */
const MAX_CACHED = 10_000;
const cache = new Map<string, Verdict>();

function judge(code: string): Verdict {
  let verdict = cache.get(code);
  if (verdict) return verdict;
  verdict = parse(code);
  if (cache.size >= MAX_CACHED) cache.clear();
  cache.set(code, verdict);
  return verdict;
}

function parse(code: string): Verdict {
  const utils = ucumUtils as UcumUtils;
  let result: Validation;
  try {
    result = utils.validateUnitString(code, false);
  } catch (e) {
    return { problem: e instanceof Error ? e.message : String(e) };
  }
  // ucum-lhc trims and may rewrite what it was given; the code as written is what must be UCUM.
  if (result.status !== 'valid' || result.ucumCode !== code) {
    const reason = result.msg.join('; ') || `${code} is not a valid UCUM code.`;
    return { problem: reason };
  }
  try {
    const base = utils.convertToBaseUnits(code, 1);
    if (base.status !== 'succeeded' || !base.unitToExp) return {};
    const dimension = Object.entries(base.unitToExp)
      .filter(([, exp]) => exp !== 0)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([unit, exp]) => (exp === 1 ? unit : `${unit}${exp}`))
      .join('.');
    return { dimension };
  } catch {
    return {};
  }
}

/**
 * Why `code` is not a valid UCUM unit, in the words of the HL7 validator ("Error processing unit
 * ..."), or undefined when it is valid.
 */
export function ucumProblem(code: string): string | undefined {
  const { problem } = judge(code);
  return problem === undefined ? undefined : `Error processing unit '${code}': ${problem}`;
}

/**
 * Whether `code` is a valid UCUM unit of the same dimension as `canonical` (the `canonical` filter of
 * a UCUM value set: all time units are those commensurable with `a`). Units UCUM cannot reduce to
 * base units match only themselves.
 */
export function sameDimension(code: string, canonical: string): boolean {
  const a = judge(code);
  if (a.problem !== undefined) return false;
  const b = judge(canonical);
  if (a.dimension === undefined || b.dimension === undefined) return code === canonical;
  return a.dimension === b.dimension;
}

export function isValidUcum(code: string): boolean {
  return judge(code).problem === undefined;
}
