import { ucumUtils } from 'fhirpath';

/** Case- and accent-insensitive form of a string, for string parameters (R4 search, "string"). */
export function normalizeText(value: string): string {
  return value.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().trim();
}

export function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export const UCUM = 'http://unitsofmeasure.org';

interface BaseUnits {
  status: string;
  magnitude: number;
  unitToExp: Record<string, number>;
}
interface UcumUtils {
  convertToBaseUnits(unit: string, value: number): BaseUnits;
}

const canonicalCache = new Map<string, { factor: number; code: string } | null>();

/**
 * A UCUM quantity in base units ("mg" -> "g" with factor 0.001), so that 1 g matches 1000 mg. The
 * ucum-lhc instance comes with fhirpath (its own dependency), typed here because fhirpath declares it
 * as `any`. Returns undefined for units UCUM cannot convert (the quantity is then matched as written).
 */
export function canonicalQuantity(value: number, code: string): { value: number; code: string } | undefined {
  let entry = canonicalCache.get(code);
  if (entry === undefined) {
    entry = null;
    try {
      const result = (ucumUtils as UcumUtils).convertToBaseUnits(code, 1);
      if (result.status === 'succeeded' && typeof result.magnitude === 'number') {
        const unit = Object.entries(result.unitToExp)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([u, e]) => `${u}${e === 1 ? '' : e}`)
          .join('.');
        entry = { factor: result.magnitude, code: unit || '1' };
      }
    } catch {
      entry = null;
    }
    canonicalCache.set(code, entry);
  }
  if (!entry) return undefined;
  // Rounded to 12 significant digits so that 0.001*1000 compares equal to 1.
  return { value: Number((value * entry.factor).toPrecision(12)), code: entry.code };
}
