import { type UserInvocationTable, util } from 'fhirpath';
import type { CarePlanActivityDetail, CodeableConcept, Coding } from '@medplum/fhirtypes';
import { fromDay, toDay } from './dates';
import { type ReviewContext, clinicalDate, scheduledEnd } from './context';
import type { MedicationBearing } from './medications';

/**
 * The domain functions checks may call from FHIRPath, bound to one review. fhirpath.js looks user
 * functions up at evaluation time, so expressions are compiled once (check-registry.ts) and this table is
 * passed with each evaluation. Functions are registered with `internalStructures` so fhirpath.js hands
 * over its nodes unchanged; `plain()` unwraps them to the JSON values.
 *
 * Class arguments are class keys (`'buprenorphine'`) or ValueSet urls. Dates are FHIR date strings.
 */

type Json = Record<string, unknown>;

function plain(value: unknown): unknown {
  return util.valData(value) as unknown;
}

function plainList(values: unknown): unknown[] {
  return Array.isArray(values) ? values.map(plain) : values === undefined || values === null ? [] : [plain(values)];
}

function str(value: unknown): string {
  const v = Array.isArray(value) ? plain(value[0]) : plain(value);
  return v === undefined || v === null ? '' : String(v);
}

function num(value: unknown): number {
  const v = Array.isArray(value) ? plain(value[0]) : plain(value);
  return Number(v);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null;
}

/** A date-like input: a date/dateTime string, a Period (its end, else start) or a resource (its clinical date). */
function dayOf(v: unknown): number | undefined {
  const p = plain(v);
  if (typeof p === 'string') return toDay(p);
  if (
    p !== null &&
    typeof p === 'object' &&
    'toString' in p &&
    !('resourceType' in p) &&
    !('start' in p) &&
    !('end' in p)
  ) {
    // fhirpath.js date/time objects (FP_DateTime) print as ISO strings.
    const s = String(p);
    if (/^\d{4}/.test(s)) return toDay(s);
  }
  if (isObject(p)) {
    if ('resourceType' in p) return toDay(clinicalDate(p));
    const period = p as { start?: string; end?: string };
    return toDay(period.end ?? period.start);
  }
  return undefined;
}

function codingsOf(v: unknown): Coding[] {
  const p = plain(v);
  if (!isObject(p)) return [];
  if ('coding' in p) return ((p as CodeableConcept).coding ?? []) as Coding[];
  if ('system' in p && 'code' in p) return [p as Coding];
  if ('code' in p && isObject(p.code)) return codingsOf(p.code);
  return [];
}

const MEDICATION_BEARING = new Set([
  'MedicationRequest',
  'MedicationDispense',
  'MedicationStatement',
  'MedicationAdministration',
]);

export function domainFunctions(ctx: ReviewContext): UserInvocationTable {
  const inClassOf = (item: unknown, cls: string): boolean => {
    const p = plain(item);
    if (isObject(p) && MEDICATION_BEARING.has(String(p.resourceType)))
      return ctx.inClass(p as unknown as MedicationBearing, cls);
    if (isObject(p) && p.resourceType === 'Medication') {
      const url = ctx.requireClass(cls).valueSetUrl;
      const med = p as { code?: CodeableConcept; ingredient?: { itemCodeableConcept?: CodeableConcept }[] };
      const codings = [
        ...(med.code?.coding ?? []),
        ...(med.ingredient ?? []).flatMap((i) => i.itemCodeableConcept?.coding ?? []),
      ];
      return ctx.classes.containsAny(url, codings);
    }
    return ctx.classes.containsAny(ctx.requireClass(cls).valueSetUrl, codingsOf(p));
  };
  const table: UserInvocationTable = {
    /** inClass(cls): any input medication (request, dispense, statement, Medication, concept) is in the class. */
    inClass: {
      fn: (inputs: unknown[], cls: unknown) => plainList(inputs).some((i) => inClassOf(i, str(cls))),
      arity: { 1: ['String'] },
    },
    /** inValueSet(url): any input Coding/CodeableConcept (or a resource's code) is in the value set. */
    inValueSet: {
      fn: (inputs: unknown[], url: unknown) =>
        plainList(inputs).some((i) => codingsOf(i).some((c) => ctx.classes.containsCoding(str(url), c))),
      arity: { 1: ['String'] },
    },
    isActive: { fn: (_i: unknown[], cls: unknown) => ctx.isActive(str(cls)), arity: { 1: ['String'] } },
    activeClasses: { fn: () => ctx.activeClasses(), arity: { 0: [] } },
    filledClasses: { fn: () => ctx.filledClasses(), arity: { 0: [] } },
    hasFills: { fn: (_i: unknown[], cls: unknown) => ctx.supplies(str(cls)).length > 0, arity: { 1: ['String'] } },
    /** coveredDays(cls[, days]): days covered in the last `days` days, or in the review period. */
    coveredDays: {
      fn: (_i: unknown[], cls: unknown, days?: unknown) =>
        ctx.coveredDays(str(cls), days === undefined ? undefined : num(days)),
      arity: { 1: ['String'], 2: ['String', 'Integer'] },
    },
    lastCoveredDay: {
      fn: (_i: unknown[], cls: unknown) => ctx.lastCoveredDay(str(cls)) ?? [],
      arity: { 1: ['String'] },
    },
    /** pdc(cls): PDC over the review period (empty when the class has no fill in it). */
    pdc: {
      fn: (_i: unknown[], cls: unknown) => {
        const r = ctx.pdc(str(cls));
        return r.fillCount ? r.pdc : [];
      },
      arity: { 1: ['String'] },
    },
    pdcEligible: { fn: (_i: unknown[], cls: unknown) => ctx.pdc(str(cls)).eligible, arity: { 1: ['String'] } },
    graceDays: { fn: (_i: unknown[], cls: unknown) => ctx.graceDays(str(cls)), arity: { 1: ['String'] } },
    classTitle: { fn: (_i: unknown[], cls: unknown) => ctx.requireClass(str(cls)).title, arity: { 1: ['String'] } },
    // Population measures (src/measures). Class arguments may join several keys with commas.
    /** treatmentStart(cls): the PDC index date (first fill in the period); empty without one. */
    treatmentStart: {
      fn: (_i: unknown[], cls: unknown) => ctx.pdc(str(cls)).treatmentStart ?? [],
      arity: { 1: ['String'] },
    },
    /** fillDates(cls): the distinct dates of the class's fills in the period. */
    fillDates: { fn: (_i: unknown[], cls: unknown) => ctx.fillDates(str(cls)), arity: { 1: ['String'] } },
    /** dispenseDates(cls): the distinct dates of the class's dispenses in the period, days' supply or not. */
    dispenseDates: {
      fn: (_i: unknown[], cls: unknown) => ctx.dispenseDates(str(cls)),
      arity: { 1: ['String'] },
    },
    /** daysSupplied(cls): the days' supply of the class's fills in the period, summed. */
    daysSupplied: { fn: (_i: unknown[], cls: unknown) => ctx.daysSupplied(str(cls)), arity: { 1: ['String'] } },
    /** overlapDays(a, b): days of the period covered by both classes. */
    overlapDays: {
      fn: (_i: unknown[], a: unknown, b: unknown) => ctx.overlapDays(str(a), str(b)),
      arity: { 2: ['String', 'String'] },
    },
    /** continuousDays(cls, maxGap): the longest episode in the period, gaps of up to maxGap days bridged. */
    continuousDays: {
      fn: (_i: unknown[], cls: unknown, gap: unknown) => ctx.continuousDays(str(cls), num(gap)),
      arity: { 2: ['String', 'Integer'] },
    },
    /** episodeDays(cls): first fill in the period to the last covered day (cut at the period end). */
    episodeDays: {
      fn: (_i: unknown[], cls: unknown) => {
        const e = ctx.episode(str(cls));
        return e ? e.end - e.start + 1 : 0;
      },
      arity: { 1: ['String'] },
    },
    /** averageDailyMme(cls): the PQA average daily MME over the class's episode. */
    averageDailyMme: { fn: (_i: unknown[], cls: unknown) => ctx.averageDailyMme(str(cls)), arity: { 1: ['String'] } },
    /** latestFillClass(keys): which of the classes the latest fill in the period belongs to. */
    latestFillClass: {
      fn: (_i: unknown[], keys: unknown) => ctx.latestFillClass(str(keys)) ?? [],
      arity: { 1: ['String'] },
    },
    /** latestFillDrug(cls): the active ingredient(s) of the latest fill in the period. */
    latestFillDrug: {
      fn: (_i: unknown[], cls: unknown) => ctx.latestSupply(str(cls))?.drugKey ?? [],
      arity: { 1: ['String'] },
    },
    /** prescriberOf(cls): who prescribed the latest fill in the period (`Practitioner/id`). */
    prescriberOf: { fn: (_i: unknown[], cls: unknown) => ctx.prescriberOf(str(cls)) ?? [], arity: { 1: ['String'] } },
    /** ageInYears(): the patient's age on the review date (the period end for a measure). */
    ageInYears: { fn: () => ctx.ageInYears() ?? [], arity: { 0: [] } },
    newStarts: { fn: () => ctx.newStarts(), arity: { 0: [] } },
    dailyMme: { fn: () => ctx.mme().total, arity: { 0: [] } },
    mmeEvidence: { fn: () => ctx.mme().lines.map((l) => l.reference), arity: { 0: [] } },
    activeEvidence: { fn: (_i: unknown[], cls: unknown) => ctx.activeEvidence(str(cls)), arity: { 1: ['String'] } },
    fillEvidence: { fn: (_i: unknown[], cls: unknown) => ctx.fillEvidence(str(cls)), arity: { 1: ['String'] } },
    /** isActiveMedication(): the input statement/request is for a medication the patient is currently on. */
    isActiveMedication: {
      fn: (inputs: unknown[]) =>
        plainList(inputs).some(
          (i) =>
            isObject(i) &&
            MEDICATION_BEARING.has(String(i.resourceType)) &&
            ctx.isActiveMedication(i as unknown as MedicationBearing),
        ),
      arity: { 0: [] },
    },
    /** medicationName(): the product name of the input request/dispense/statement (for details). */
    medicationName: {
      fn: (inputs: unknown[]) =>
        plainList(inputs).flatMap((i) =>
          isObject(i) && MEDICATION_BEARING.has(String(i.resourceType))
            ? (ctx.medication(i as unknown as MedicationBearing).name ??
              ctx.medication(i as unknown as MedicationBearing).drugKey)
            : [],
        ),
      arity: { 0: [] },
    },
    /** clinicalDate(): the day a resource happened (effective, handed over, period start, ...). */
    clinicalDate: {
      fn: (inputs: unknown[]) => plainList(inputs).flatMap((i) => (isObject(i) ? (clinicalDate(i) ?? []) : [])),
      arity: { 0: [] },
    },
    /** scheduledEnd(): on CarePlan.activity.detail, the day by which it was due. */
    scheduledEnd: {
      fn: (inputs: unknown[]) =>
        plainList(inputs).flatMap((i) =>
          isObject(i) ? (scheduledEnd(i as unknown as CarePlanActivityDetail) ?? []) : [],
        ),
      arity: { 0: [] },
    },
    /** daysSince(): days from the input date to the review date (negative when it is later). */
    daysSince: {
      fn: (inputs: unknown[]) => {
        const day = dayOf(inputs[0]);
        return day === undefined ? [] : ctx.dateDay - day;
      },
      arity: { 0: [] },
    },
    /** withinDays(n): the input date is on the review date or in the n days before it. */
    withinDays: {
      fn: (inputs: unknown[], n: unknown) =>
        inputs.some((i) => {
          const day = dayOf(i);
          return day !== undefined && day <= ctx.dateDay && ctx.dateDay - day <= num(n);
        }),
      arity: { 1: ['Integer'] },
    },
    addDays: {
      fn: (inputs: unknown[], n: unknown) => {
        const day = dayOf(inputs[0]);
        return day === undefined ? [] : fromDay(day + num(n));
      },
      arity: { 1: ['Integer'] },
    },
    /** between(from, to): the input date lies in [from, to] (inclusive). */
    between: {
      fn: (inputs: unknown[], from: unknown, to: unknown) => {
        const day = dayOf(inputs[0]);
        const a = toDay(str(from));
        const b = toDay(str(to));
        return day !== undefined && a !== undefined && b !== undefined && a <= day && day <= b;
      },
      arity: { 2: ['String', 'String'] },
    },
  };
  // Every function receives fhirpath.js nodes (see the module comment).
  for (const entry of Object.values(table)) entry.internalStructures = true;
  return table;
}
