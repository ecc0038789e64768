import type { Resource } from '@medplum/fhirtypes';
import type { Filter } from 'mongodb';
import type { MedicationClassRegistry } from '../checks';
import type { CurrentDocument } from '../store/documents';
import type { Reader } from '../store/read-view';
import { ADHERENCE_INPUTS, type AdherenceEnv } from './adherence';
import type { ViewPlan } from './compile';
import { viewRows, type Row } from './rows';

/** Resources read per batch: what a running view holds at once, whatever the collection's size. */
export const VIEW_BATCH = 200;

/** What a view reads of a document: the resource and its number texts (not the search index, which is most of it). */
const PROJECTION = { resource: 1, nt: 1 };

export interface RunScope {
  /** Patients whose compartments the rows come from; undefined for every resource. */
  compartments?: string[];
  since?: Date;
  limit?: number;
}

/** What a run of a view calling medicationAdherence() computes from. */
export interface AdherenceSource {
  classes: MedicationClassRegistry;
  /** The day of the run (YYYY-MM-DD): the function's default review date. */
  today: string;
  /** The compartments of a batch of patients, read through the run's reader. */
  compartments(reader: Reader, patientIds: string[]): Promise<Map<string, Resource[]>>;
}

/** The database filter of a run: live resources, in the given compartments, changed since. */
export function runFilter(scope: RunScope): Filter<CurrentDocument> {
  const filter: Filter<CurrentDocument> = { deleted: { $ne: true } };
  if (scope.compartments) filter.compartments = { $in: scope.compartments.map((id) => `Patient/${id}`) };
  if (scope.since) filter.ts = { $gte: scope.since };
  return filter;
}

/**
 * The view's rows, one batch of resources at a time, read through `reader` (the request's reads, so
 * the requester's scopes, compartments and labels apply as they do to a search) and cut at the limit.
 */
export async function* runView(
  reader: Reader,
  plan: ViewPlan,
  scope: RunScope,
  adherence?: AdherenceSource,
): AsyncGenerator<Row[]> {
  if (scope.compartments && !scope.compartments.length) return;
  let left = scope.limit ?? Infinity;
  for await (const docs of reader.batches<CurrentDocument>(plan.resource, runFilter(scope), VIEW_BATCH, PROJECTION)) {
    const shared = plan.adherence && adherence ? await adherenceOf(reader, docs, adherence) : {};
    const rows: Row[] = [];
    for (const doc of docs) for (const row of viewRows(plan, doc.resource, shared)) rows.push(row);
    if (rows.length >= left) {
      yield rows.slice(0, left);
      return;
    }
    left -= rows.length;
    yield rows;
  }
}

/** The batch's compartments, loaded before its rows are made (a FHIRPath function cannot wait for reads). */
async function adherenceOf(reader: Reader, docs: CurrentDocument[], source: AdherenceSource): Promise<AdherenceEnv> {
  const ids = docs.flatMap((d) => (d.resource.id ? [d.resource.id] : []));
  const compartments = await source.compartments(reader, ids);
  return {
    [ADHERENCE_INPUTS]: { classes: source.classes, today: source.today, compartment: (id) => compartments.get(id) },
  };
}

/** The rows of resources given in memory (the suite's cases, a client's inline resources). */
export function rowsOfResources(plan: ViewPlan, resources: Resource[]): Row[] {
  return resources.flatMap((r) => viewRows(plan, r));
}

/**
 * Runs the iterable up to its first non-empty batch now, so that what fails there fails before an
 * answer is started (an OperationOutcome, not a cut stream), and replays it first.
 */
export async function primed<T>(source: AsyncGenerator<T[]>): Promise<AsyncGenerator<T[]>> {
  const head: T[][] = [];
  let done = false;
  for (;;) {
    const next = await source.next();
    if (next.done) {
      done = true;
      break;
    }
    head.push(next.value);
    if (next.value.length) break;
  }
  return (async function* replay() {
    try {
      yield* head;
      if (!done) yield* source;
    } finally {
      if (!done) await source.return(undefined);
    }
  })();
}
