import type { Patient, Resource } from '@medplum/fhirtypes';
import type { MedicationClassRegistry } from '../checks/classes';
import { ReviewContext } from '../checks/context';
import { domainFunctions } from '../checks/fhirpath-functions';
import type { CompiledMeasure, PopulationCode } from './definition';

/** What one patient contributes to one group: the populations it is in and its stratum per stratifier. */
export interface GroupMembership {
  populations: PopulationCode[];
  /** The patient's value for each stratifier, in the group's order (only for patients in the initial population). */
  strata: string[];
}

export interface PatientResult {
  patient: string;
  groups: GroupMembership[];
}

export interface MeasurementPeriod {
  start: string;
  end: string;
}

/** A criterion that failed on a patient's data: the report cannot be trusted, so the evaluation stops. */
export class MeasureEvaluationError extends Error {
  constructor(
    readonly at: string,
    cause: unknown,
  ) {
    super(`${at} failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

const UNKNOWN = 'unknown';

/**
 * Evaluates a measure for one patient over its compartment, as of the period end, with the checks
 * engine's domain functions. Populations nest as R4 proportion measures say: the denominator is taken
 * from the initial population, exclusions from the denominator, the numerator from the denominator
 * without its exclusions.
 */
export function evaluatePatient(
  measure: CompiledMeasure,
  patient: Patient,
  resources: Resource[],
  period: MeasurementPeriod,
  classes: MedicationClassRegistry,
): PatientResult {
  // PQA counts paid claims: a prescription without a dispense is no fill here, though the review lets
  // one stand in for a dispense the pharmacy never reported.
  const ctx = new ReviewContext(patient, resources, period.end, period.start, period.end, classes, {
    usePrescriptions: false,
  });
  const table = domainFunctions(ctx);
  const env = { resources, patient, date: period.end, periodStart: period.start, periodEnd: period.end };
  const run = (expr: CompiledMeasure['groups'][number]['stratifiers'][number]['criteria'], at: string): unknown[] => {
    try {
      return expr(patient, env, { userInvocationTable: table }) as unknown[];
    } catch (e) {
      throw new MeasureEvaluationError(at, e);
    }
  };
  const groups = measure.groups.map((group, g): GroupMembership => {
    const holds = (code: PopulationCode): boolean => {
      const criteria = group.populations[code];
      if (!criteria) return code === 'denominator';
      const r = run(criteria, `Measure.group[${g}] ${code}`);
      return r.length === 1 && r[0] === true;
    };
    const populations: PopulationCode[] = [];
    const strata: string[] = [];
    if (!holds('initial-population')) return { populations, strata };
    populations.push('initial-population');
    group.stratifiers.forEach((s, i) => {
      const value = run(s.criteria, `Measure.group[${g}].stratifier[${i}]`)[0];
      strata[i] = value === undefined || value === null || value === '' ? UNKNOWN : String(value);
    });
    if (!holds('denominator')) return { populations, strata };
    populations.push('denominator');
    if (group.populations['denominator-exclusion'] && holds('denominator-exclusion')) {
      populations.push('denominator-exclusion');
      return { populations, strata };
    }
    if (holds('numerator')) populations.push('numerator');
    return { populations, strata };
  });
  return { patient: patient.id as string, groups };
}

/**
 * Evaluates every criterion of a measure (whatever the nesting would skip) on a patient without data:
 * what compiling cannot catch (unknown functions, class keys, value sets) throws here.
 */
export function dryRun(measure: CompiledMeasure, classes: MedicationClassRegistry): void {
  const patient: Patient = { resourceType: 'Patient', id: 'dry-run', birthDate: '1970-01-01' };
  const period = { start: '2025-01-01', end: '2025-12-31' };
  const ctx = new ReviewContext(patient, [patient], period.end, period.start, period.end, classes);
  const table = domainFunctions(ctx);
  const env = { resources: [patient], patient, date: period.end, periodStart: period.start, periodEnd: period.end };
  measure.groups.forEach((group, g) => {
    const criteria = [
      ...Object.entries(group.populations).map(([code, c]) => [`Measure.group[${g}] ${code}`, c] as const),
      ...group.stratifiers.map((s, i) => [`Measure.group[${g}].stratifier[${i}]`, s.criteria] as const),
    ];
    for (const [at, criterion] of criteria) {
      try {
        criterion(patient, env, { userInvocationTable: table });
      } catch (e) {
        throw new MeasureEvaluationError(at, e);
      }
    }
  });
}
