import type { Dosage, MedicationDispense, MedicationRequest } from '@medplum/fhirtypes';
import { durationToDays, toDay } from './dates';
import { type MedicationInfo, type ResourceIndex, medicationOf, resolveReference } from './medications';

/**
 * Supplies: the days of medication a patient had on hand, one per dispense (or per prescription standing
 * in for missing dispenses), and the PQA day-by-day coverage built from them.
 */

export interface Supply {
  /** `MedicationDispense/id` or `MedicationRequest/id`: the evidence for this supply. */
  reference: string;
  fillDay: number;
  days: number;
  drugKey: string;
  medication: MedicationInfo;
  /** True when no dispense exists and the prescription's dispenseRequest stands in. */
  prescriptionBased: boolean;
}

/** Which medications count: a class test over the resolved medication. */
export interface ClassMatcher {
  key: string;
  matches(medication: MedicationInfo): boolean;
}

/** Dispenses in these states never reached the patient (PQA counts paid claims only). */
const EXCLUDED_DISPENSE = new Set(['cancelled', 'entered-in-error', 'declined']);
const EXCLUDED_REQUEST = new Set(['cancelled', 'entered-in-error', 'draft']);

const TIMING_CODES_PER_DAY: Record<string, number> = {
  QD: 1,
  AM: 1,
  PM: 1,
  QHS: 1,
  BID: 2,
  TID: 3,
  QID: 4,
  Q4H: 6,
  Q6H: 4,
  Q8H: 3,
};

/** Doses per day × amount per dose of the first dosage instruction; undefined when it cannot be known. */
export function dailyDose(dosage: Dosage | undefined): { amount: number; unit?: string } | undefined {
  if (!dosage) return undefined;
  const dr = dosage.doseAndRate?.[0];
  const dose = dr?.doseQuantity ?? dr?.doseRange?.high ?? dr?.doseRange?.low;
  if (dose?.value === undefined) return undefined;
  const perDay = administrationsPerDay(dosage);
  if (perDay === undefined) return undefined;
  return { amount: dose.value * perDay, unit: dose.code ?? dose.unit };
}

export function administrationsPerDay(dosage: Dosage): number | undefined {
  const repeat = dosage.timing?.repeat;
  if (repeat?.frequency !== undefined && repeat.period !== undefined) {
    const periodDays = durationToDays(repeat.period, repeat.periodUnit);
    return periodDays > 0 ? repeat.frequency / periodDays : undefined;
  }
  const count = (repeat?.when?.length ?? 0) || (repeat?.timeOfDay?.length ?? 0);
  if (count) return count;
  const code = dosage.timing?.code?.coding?.[0]?.code;
  return code ? TIMING_CODES_PER_DAY[code.toUpperCase()] : undefined;
}

function fillDateOf(d: MedicationDispense): string | undefined {
  return d.whenHandedOver ?? d.whenPrepared;
}

/** The day a dispense reached the patient; undefined when it never did (cancelled, declined, in error) or is undated. */
export function handedOverDay(d: MedicationDispense): number | undefined {
  return EXCLUDED_DISPENSE.has(d.status) ? undefined : toDay(fillDateOf(d));
}

export interface SupplyInput {
  dispenses: readonly MedicationDispense[];
  prescriptions: readonly MedicationRequest[];
  index: ResourceIndex;
  cls: ClassMatcher;
  /** Let prescriptions without any dispense stand in (flagged prescription-based). Default true. */
  usePrescriptions?: boolean;
}

/** Supplies of one class, sorted by fill day. */
export function suppliesOf(input: SupplyInput): Supply[] {
  const { dispenses, prescriptions, index, cls } = input;
  const supplies: Supply[] = [];
  const dispensed = new Set<string>();
  for (const d of dispenses) {
    if (EXCLUDED_DISPENSE.has(d.status)) continue;
    for (const p of d.authorizingPrescription ?? []) if (p.reference) dispensed.add(p.reference.split('/').pop() ?? '');
    const medication = medicationOf(d, index);
    if (!cls.matches(medication)) continue;
    const fillDay = toDay(fillDateOf(d));
    if (fillDay === undefined) continue;
    let days = d.daysSupply?.value;
    if (days === undefined && d.quantity?.value !== undefined) {
      // Without daysSupply: quantity divided by the daily dose of the prescription (or of the dispense's own
      // dosage instruction when the prescription is not available).
      const request = resolveReference<MedicationRequest>(d.authorizingPrescription?.[0], index, d);
      const dose = dailyDose(request?.dosageInstruction?.[0]) ?? dailyDose(d.dosageInstruction?.[0]);
      if (dose && dose.amount > 0) days = Math.floor(d.quantity.value / dose.amount);
    }
    if (!days || days <= 0) continue;
    supplies.push({
      reference: `MedicationDispense/${d.id}`,
      fillDay,
      days: Math.round(days),
      drugKey: medication.drugKey,
      medication,
      prescriptionBased: false,
    });
  }
  if (input.usePrescriptions !== false) {
    for (const r of prescriptions) {
      if (EXCLUDED_REQUEST.has(r.status) || dispensed.has(r.id ?? '')) continue;
      const medication = medicationOf(r, index);
      if (!cls.matches(medication)) continue;
      const dr = r.dispenseRequest;
      const fillDay = toDay(dr?.validityPeriod?.start);
      const duration = durationToDays(
        dr?.expectedSupplyDuration?.value,
        dr?.expectedSupplyDuration?.code ?? dr?.expectedSupplyDuration?.unit,
      );
      if (fillDay === undefined || duration <= 0) continue;
      supplies.push({
        reference: `MedicationRequest/${r.id}`,
        fillDay,
        days: Math.round(duration * (1 + (dr?.numberOfRepeatsAllowed ?? 0))),
        drugKey: medication.drugKey,
        medication,
        prescriptionBased: true,
      });
    }
  }
  return supplies.sort((a, b) => a.fillDay - b.fillDay || a.reference.localeCompare(b.reference));
}

export interface ShiftedSupply extends Supply {
  /** First and last day the supply covers after PQA's same-drug shifting. */
  startDay: number;
  endDay: number;
}

/**
 * PQA overlap rule: a fill of the same drug (same active ingredients) obtained before the previous supply
 * ran out starts the day after it runs out. Supplies of different drugs are not shifted; the days they
 * share are simply counted once by `coveredDaySet`.
 */
export function shiftSupplies(supplies: readonly Supply[]): ShiftedSupply[] {
  const lastEndByDrug = new Map<string, number>();
  return supplies.map((s) => {
    const previousEnd = lastEndByDrug.get(s.drugKey);
    const startDay = previousEnd !== undefined && previousEnd >= s.fillDay ? previousEnd + 1 : s.fillDay;
    const endDay = startDay + s.days - 1;
    lastEndByDrug.set(s.drugKey, endDay);
    return { ...s, startDay, endDay };
  });
}

/** Number of distinct days in [from, to] covered by any of the shifted supplies. */
export function countCoveredDays(shifted: readonly ShiftedSupply[], from: number, to: number): number {
  const intervals = shifted
    .map((s) => [Math.max(s.startDay, from), Math.min(s.endDay, to)] as const)
    .filter(([a, b]) => a <= b)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let current: [number, number] | undefined;
  for (const [a, b] of intervals) {
    if (current && a <= current[1] + 1) current[1] = Math.max(current[1], b);
    else {
      if (current) total += current[1] - current[0] + 1;
      current = [a, b];
    }
  }
  if (current) total += current[1] - current[0] + 1;
  return total;
}

/** The last day covered by the union of supplies, following any chain of contiguous coverage. */
export function lastCoveredDay(shifted: readonly ShiftedSupply[]): number | undefined {
  let last: number | undefined;
  for (const s of shifted) last = last === undefined ? s.endDay : Math.max(last, s.endDay);
  return last;
}

export function isCoveredOn(shifted: readonly ShiftedSupply[], day: number): boolean {
  return shifted.some((s) => s.startDay <= day && day <= s.endDay);
}
