import type { ParametersParameter, Patient, Resource } from '@medplum/fhirtypes';
import { type UserInvocationTable, util } from 'fhirpath';
import { defaultPeriod, type MedicationClassRegistry, reviewAdherence } from '../checks';

/**
 * medicationAdherence([date [, periodStart [, periodEnd]]]), a meds-fhir extension of the view engine's
 * FHIRPath: on a Patient, one object per medication class the patient has fills of, with the PDC that
 * Patient/[id]/$medication-review reports for the same dates (the checks engine computes both). Its
 * arguments are those of the operation: date defaults to the day of the run (UTC), periodEnd to date,
 * periodStart to 180 days before periodEnd. The objects' elements are the operation's adherence parts:
 * medicationClass (the class key), medicationClassTitle, periodStart, periodEnd, daysInPeriod,
 * daysCovered, pdc, adherent, lastCoveredDay, eligible.
 *
 * The PDC needs the patient's whole compartment, which a view over Patient does not read; the run loads
 * the compartments of each batch of Patients before making their rows (loadCompartments), through the
 * request's reads, so the requester's access applies to the fills counted as it does to a search.
 */
export const ADHERENCE_FUNCTION = 'medicationAdherence';

/** Whether a FHIRPath text calls medicationAdherence(). */
export const callsAdherence = (text: string): boolean => /\bmedicationAdherence\s*\(/.test(text);

/** What medicationAdherence() computes from: the compartments of the batch being run. */
export interface AdherenceInputs {
  classes: MedicationClassRegistry;
  /** The day of the run (YYYY-MM-DD), the default review date. */
  today: string;
  /** A patient's compartment (its resources and referenced Medications), when the run loaded it. */
  compartment(patientId: string): Resource[] | undefined;
}

/** A medicationAdherence() argument was not a calendar date. */
export class AdherenceArgumentError extends Error {}

type AdherenceRow = Record<string, string | number | boolean>;

function dateArgument(value: unknown, name: string): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === null) return undefined;
  const text = String(util.valData(v) as unknown);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    throw new AdherenceArgumentError(`${ADHERENCE_FUNCTION}(): ${name} must be a date (YYYY-MM-DD), got ${text}`);
  }
  return text;
}

/** One adherence parameter of the review as the flat object the view's columns read. */
function flatten(parameter: ParametersParameter): AdherenceRow {
  const row: AdherenceRow = {};
  for (const part of parameter.part ?? []) {
    if (part.valueCoding) {
      row[part.name] = part.valueCoding.code ?? '';
      if (part.valueCoding.display) row[`${part.name}Title`] = part.valueCoding.display;
    } else {
      const value = part.valueDate ?? part.valueInteger ?? part.valueDecimal ?? part.valueBoolean;
      if (value !== undefined) row[part.name] = value;
    }
  }
  return row;
}

/**
 * Where a run hands a batch's inputs to the function: a key of the FHIRPath environment that no
 * expression can name (a symbol), read by the function from its evaluation context.
 */
export const ADHERENCE_INPUTS: unique symbol = Symbol('medicationAdherence inputs');

/** The environment of one evaluation with the batch's inputs. */
export type AdherenceEnv = { [ADHERENCE_INPUTS]?: AdherenceInputs };

/**
 * The function, compiled into every view expression. Without inputs (inline resources, the suite, a view
 * over another type) it gives no rows.
 */
export const ADHERENCE_TABLE: UserInvocationTable = (() => {
  function fn(
    this: { vars?: AdherenceEnv },
    nodes: unknown[],
    dateArg?: unknown,
    startArg?: unknown,
    endArg?: unknown,
  ): AdherenceRow[] {
    const inputs = this.vars?.[ADHERENCE_INPUTS];
    const date = dateArgument(dateArg, 'date') ?? inputs?.today ?? new Date().toISOString().slice(0, 10);
    const periodEnd = dateArgument(endArg, 'periodEnd') ?? date;
    const periodStart = dateArgument(startArg, 'periodStart') ?? defaultPeriod(periodEnd).periodStart;
    if (periodEnd < periodStart) {
      throw new AdherenceArgumentError(`${ADHERENCE_FUNCTION}(): periodEnd (${periodEnd}) is before periodStart`);
    }
    const rows: AdherenceRow[] = [];
    if (!inputs) return rows;
    for (const node of nodes) {
      const patient = util.valData(node) as Patient | undefined;
      if (patient?.resourceType !== 'Patient' || !patient.id) continue;
      const resources = inputs.compartment(patient.id);
      if (!resources) continue;
      const input = { patient, resources: [patient, ...resources], date, periodStart, periodEnd };
      rows.push(...reviewAdherence(input, inputs.classes).map(flatten));
    }
    return rows;
  }
  return {
    [ADHERENCE_FUNCTION]: {
      fn,
      arity: { 0: [], 1: ['Any'], 2: ['Any', 'Any'], 3: ['Any', 'Any', 'Any'] },
      internalStructures: true,
    },
  } as UserInvocationTable;
})();
