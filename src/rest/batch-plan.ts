import type { BundleEntry } from '@medplum/fhirtypes';
import { CONFORMANCE_TYPES } from '../auth/authorize';
import { claimKey } from './conditional';

/**
 * What an entry of a batch may run beside. `alone`: it runs after every earlier entry has finished
 * and before any later one starts. `read`: beside other reads. `write`: beside other writes whose
 * target differs (`target`, the resource or condition it names).
 */
export type EntryLane = { kind: 'alone' } | { kind: 'read' } | { kind: 'write'; target: string };

const TYPE = /^[A-Z][A-Za-z]{0,63}$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** A query's condition in the one spelling that conditional-create claims use. */
function conditionKey(type: string, query: string): string {
  return claimKey(type, [...new URLSearchParams(query).entries()]);
}

/**
 * The lane of one entry, from its request alone (before any handler runs). Only plain CRUD writes of
 * ordinary types share a lane: an operation, a nested Bundle, a conditional delete (which may match
 * anything) and a write of a type that changes what the server does for the entries after it (a
 * profile, a SearchParameter, a check) each run alone.
 */
export function entryLane(entry: BundleEntry, index: number): EntryLane {
  const method = entry.request?.method;
  const url = (entry.request?.url ?? '').replace(/^\/+/, '');
  const [path, query = ''] = url.split('?', 2);
  const segments = path.replace(/\/+$/, '').split('/');
  const type = segments[0];
  if (method === 'GET' || method === 'HEAD') return { kind: 'read' };
  if (!TYPE.test(type) || CONFORMANCE_TYPES.has(type)) return { kind: 'alone' };
  if (method === 'POST' && segments.length === 1 && !query) {
    const condition = entry.request?.ifNoneExist;
    // Two conditional creates of one condition must not both create: they take turns.
    return { kind: 'write', target: condition ? conditionKey(type, condition) : `#${index}` };
  }
  if ((method === 'PUT' || method === 'PATCH' || method === 'DELETE') && segments.length === 1 && query) {
    if (method === 'DELETE') return { kind: 'alone' };
    return { kind: 'write', target: conditionKey(type, query) };
  }
  if (
    (method === 'PUT' || method === 'PATCH' || method === 'DELETE') &&
    segments.length === 2 &&
    ID.test(segments[1])
  ) {
    return { kind: 'write', target: `${type}/${segments[1]}` };
  }
  return { kind: 'alone' };
}

/**
 * The batch cut into waves that run one after another, each a run of consecutive entries that may
 * run side by side: reads with reads, writes with writes of other targets. Order between waves is the
 * Bundle's order, so a read sees every write listed before it, and two entries naming one resource or
 * one condition run in the order they were sent.
 */
export function batchWaves(entries: BundleEntry[]): number[][] {
  const waves: number[][] = [];
  let wave: number[] = [];
  let waveKind: EntryLane['kind'] | undefined;
  let targets = new Set<string>();
  const close = () => {
    if (wave.length) waves.push(wave);
    wave = [];
    waveKind = undefined;
    targets = new Set();
  };
  entries.forEach((entry, index) => {
    const lane = entryLane(entry, index);
    const joins =
      lane.kind !== 'alone' && lane.kind === waveKind && (lane.kind === 'read' || !targets.has(lane.target));
    if (!joins) close();
    wave.push(index);
    waveKind = lane.kind;
    if (lane.kind === 'write') targets.add(lane.target);
    if (lane.kind === 'alone') close();
  });
  close();
  return waves;
}

/**
 * Runs `task` for every item, at most `limit` at a time. Every task runs to its end even when another
 * failed (nothing is left half-done behind the answer); the first failure is then thrown.
 */
export async function runLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (failure) throw failure.error;
}
