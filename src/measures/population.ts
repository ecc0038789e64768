import type { MedicationRequest, Patient, Resource } from '@medplum/fhirtypes';
import type { Document, Filter, FindOptions } from 'mongodb';
import type { MedicationClassRegistry } from '../checks/classes';
import { loadCompartments } from '../modules/review/compartment';
import type { CurrentDocument } from '../store/documents';
import type { Reader, ReadView } from '../store/read-view';
import { MEASURE_TYPES, type CompiledMeasure } from './definition';
import { evaluatePatient, type MeasurementPeriod, type PatientResult } from './evaluate';
import { addResult, type Tally } from './tally';

/** Patients read from the cursor and evaluated before the tally is handed on (and an async job records it). */
export const PATIENT_BATCH = 100;
/** Patients whose compartments one query per type loads (our FerretDB patch pushes down an `$in` of them). */
export const COMPARTMENTS_PER_LOAD = 25;
/** Loads in flight at once: with a batch, what bounds the evaluation's memory. */
export const DEFAULT_CONCURRENCY = 8;

export interface PopulationInput {
  measure: CompiledMeasure;
  period: MeasurementPeriod;
  classes: MedicationClassRegistry;
  /** Only these patients (a Patient subject, a Group's members); undefined: every patient the reader sees. */
  patients?: string[];
  /** `Practitioner/id`: only patients with a prescription by them (or them as general practitioner). */
  practitioner?: string;
  concurrency?: number;
}

export interface Checkpoint {
  /** The last patient id whose result is in the tally. */
  after: string | null;
  tally: Tally;
}

/**
 * The compartment reads of one evaluation, through the requester's restricted view but not held to one
 * commit boundary (as an export's are not): an evaluation over many patients runs for minutes. Each
 * type is read in one pass per load.
 */
function streamingReader(view: ReadView): Reader {
  const find = async <T extends Document>(collection: string, filter: Filter<T>, options?: FindOptions) => {
    const docs: T[] = [];
    for await (const doc of view.stream<T>(collection, filter, { ...options, batchSize: 500 })) docs.push(doc);
    return docs;
  };
  return {
    db: view.db,
    find,
    findOne: async <T extends Document>(collection: string, filter: Filter<T>, options?: FindOptions) =>
      (await find<T>(collection, filter, { ...options, limit: 1 }))[0] ?? null,
    count: (collection, filter) => view.count(collection, filter),
    estimatedCount: (collection) => view.estimatedCount(collection),
    batches: (collection, filter, size, projection) => view.batches(collection, filter, size, projection),
  };
}

function prescribedBy(resources: Resource[], patient: Patient, practitioner: string): boolean {
  if (patient.generalPractitioner?.some((r) => r.reference === practitioner)) return true;
  return resources.some(
    (r) => r.resourceType === 'MedicationRequest' && (r as MedicationRequest).requester?.reference === practitioner,
  );
}

/** Runs `work` over items with at most `limit` at once; results in the items' order. */
async function mapBounded<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  });
  await Promise.all(lanes);
  return results;
}

/**
 * Evaluates a measure over a population, streaming: keyset pages of Patients in id order,
 * a batch of patients at a time, their compartments loaded a few dozen patients per query with bounded
 * concurrency, evaluated and dropped. Results are added to the tally in id order, so the report does not depend
 * on which evaluation finished first. After each batch `onBatch` receives the checkpoint; when it
 * answers false the evaluation stops there (cancelled, or the process is stopping).
 */
export async function evaluatePopulation(
  view: ReadView,
  input: PopulationInput,
  start: Checkpoint,
  onBatch: (checkpoint: Checkpoint) => Promise<boolean> | boolean = () => true,
): Promise<{ checkpoint: Checkpoint; finished: boolean }> {
  const reader = streamingReader(view);
  const types = [...new Set([...MEASURE_TYPES, ...input.measure.types.filter((t) => t !== 'Patient')])];
  const filter: Record<string, unknown> = { deleted: { $ne: true } };
  if (input.patients) filter._id = { $in: input.patients };
  if (start.after !== null) filter._id = { ...(filter._id as object), $gt: start.after };
  const checkpoint: Checkpoint = { after: start.after, tally: start.tally };
  const evaluate = async (patients: Patient[]): Promise<(PatientResult | undefined)[]> => {
    const compartments = await loadCompartments(
      reader,
      patients.map((p) => p.id as string),
      types,
    );
    return patients.map((patient) => {
      const resources = compartments.get(patient.id as string) ?? [];
      if (input.practitioner && !prescribedBy(resources, patient, input.practitioner)) return undefined;
      return evaluatePatient(input.measure, patient, [patient, ...resources], input.period, input.classes);
    });
  };
  const flush = async (batch: Patient[]): Promise<boolean> => {
    const loads: Patient[][] = [];
    for (let i = 0; i < batch.length; i += COMPARTMENTS_PER_LOAD) loads.push(batch.slice(i, i + COMPARTMENTS_PER_LOAD));
    const results = (await mapBounded(loads, input.concurrency ?? DEFAULT_CONCURRENCY, evaluate)).flat();
    for (const r of results) if (r) addResult(checkpoint.tally, r);
    checkpoint.after = batch[batch.length - 1].id as string;
    return onBatch(checkpoint);
  };
  let batch: Patient[] = [];
  for await (const doc of view.streamById<CurrentDocument>('Patient', filter, {
    batchSize: PATIENT_BATCH,
    projection: { _id: 1, resource: 1, nt: 1 },
  })) {
    batch.push(doc.resource as Patient);
    if (batch.length >= PATIENT_BATCH) {
      if (!(await flush(batch))) return { checkpoint, finished: false };
      batch = [];
    }
  }
  if (batch.length && !(await flush(batch))) return { checkpoint, finished: false };
  return { checkpoint, finished: true };
}
