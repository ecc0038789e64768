import type { Medication, MedicationDispense, MedicationRequest } from '@medplum/fhirtypes';
import { fromDay, toDay } from './dates';
import { indexResources } from './medications';
import {
  type ClassMatcher,
  type ShiftedSupply,
  countCoveredDays,
  lastCoveredDay,
  shiftSupplies,
  suppliesOf,
} from './supplies';

/**
 * Proportion of days covered, PQA method:
 * - only fills dated inside the measurement period count; the treatment period runs from the first of
 *   them (the index date) to the end of the period, and coverage past the end is cut off;
 * - same-drug overlaps shift forward, different drugs of the class do not (see supplies.ts);
 * - PDC = covered days / days in the treatment period; at least two fills on different dates are needed;
 * - adherent means PDC ≥ 0.80.
 * The Measure form also requires the index date to be ≥ 91 days before the period end; that is reported
 * as `indexAtLeast91DaysBeforeEnd` and left to the caller, because a care-team review wants a figure even
 * for a recent start.
 */

export const PDC_THRESHOLD = 0.8;

export interface Period {
  start: string;
  end: string;
}

export interface PdcResult {
  classKey: string;
  /** The requested measurement period. */
  period: Period;
  /** Index date (first fill in the period), undefined when there is no fill in the period. */
  treatmentStart?: string;
  daysInPeriod: number;
  daysCovered: number;
  pdc: number;
  adherent: boolean;
  /** At least two fills on different dates in the period. */
  eligible: boolean;
  indexAtLeast91DaysBeforeEnd: boolean;
  fillCount: number;
  /** Last covered day over all supplies (inside or outside the period), for late-refill checks. */
  lastCoveredDay?: string;
  /** True when at least one counted supply is a prescription standing in for missing dispenses. */
  prescriptionBased: boolean;
  /** The supplies counted, after shifting, as evidence. */
  supplies: ShiftedSupply[];
}

export interface PdcOptions {
  usePrescriptions?: boolean;
  threshold?: number;
}

export function computePdc(
  dispenses: readonly MedicationDispense[],
  prescriptions: readonly MedicationRequest[],
  medications: readonly Medication[],
  cls: ClassMatcher,
  period: Period,
  options: PdcOptions = {},
): PdcResult {
  const index = indexResources([...medications, ...prescriptions, ...dispenses]);
  const all = suppliesOf({ dispenses, prescriptions, index, cls, usePrescriptions: options.usePrescriptions });
  return pdcFromSupplies(cls.key, shiftSupplies(all), period, options.threshold ?? PDC_THRESHOLD);
}

/**
 * PDC from supplies already shifted over the patient's whole history. Shifting is recomputed over the
 * in-period fills only, as PQA ignores claims before the measurement period.
 */
export function pdcFromSupplies(
  classKey: string,
  allShifted: readonly ShiftedSupply[],
  period: Period,
  threshold: number = PDC_THRESHOLD,
): PdcResult {
  const startDay = toDay(period.start);
  const endDay = toDay(period.end);
  if (startDay === undefined || endDay === undefined || endDay < startDay) throw new Error('Invalid period');
  const inPeriod = shiftSupplies(allShifted.filter((s) => s.fillDay >= startDay && s.fillDay <= endDay));
  const last = lastCoveredDay(allShifted);
  const base = {
    classKey,
    period,
    lastCoveredDay: last === undefined ? undefined : fromDay(last),
    fillCount: inPeriod.length,
    prescriptionBased: inPeriod.some((s) => s.prescriptionBased),
    supplies: inPeriod,
  };
  if (!inPeriod.length) {
    return {
      ...base,
      daysInPeriod: 0,
      daysCovered: 0,
      pdc: 0,
      adherent: false,
      eligible: false,
      indexAtLeast91DaysBeforeEnd: false,
    };
  }
  const indexDay = inPeriod[0].fillDay;
  const daysInPeriod = endDay - indexDay + 1;
  const daysCovered = countCoveredDays(inPeriod, indexDay, endDay);
  const pdc = daysCovered / daysInPeriod;
  return {
    ...base,
    treatmentStart: fromDay(indexDay),
    daysInPeriod,
    daysCovered,
    pdc,
    adherent: pdc >= threshold,
    eligible: new Set(inPeriod.map((s) => s.fillDay)).size >= 2,
    indexAtLeast91DaysBeforeEnd: endDay - indexDay >= 91,
  };
}
