import type { Resource } from '@medplum/fhirtypes';
import type { ServerContext } from '../../rest/context';
import { HISTORY_COLLECTION, historyId, type HistoryDocument } from '../../store/documents';
import type { QueueEntry } from '../../store/work-queue';
import { FilterMatcher } from './filters';
import type { OutboxFields } from './outbox';
import type { SubscriptionRegistry } from './registry';
import type { SubscriptionSpec } from './spec';
import type { NewEvent, SubscriptionCollections, SubscriptionState } from './state';

interface Live {
  state: SubscriptionState;
  spec: SubscriptionSpec;
}

type OutboxEntry = QueueEntry & OutboxFields & { started?: boolean };

/** How long one process holds an outbox entry: longer than numbering its events can take. */
const LEASE_MS = 30_000;

/**
 * Turns outbox entries (committed versions) into numbered events of the subscriptions whose topic and
 * filters they match, and wakes those subscriptions' delivery. Runs in every process; the queue's
 * leases give each entry to one process at a time, and numberEvents makes working an entry twice
 * harmless. A batch numbers each subscription's events with one counter increment, in the order of
 * the entries (oldest due first). Subscriptions receive the events fanned out while they are `active`
 * or `error` (an endpoint that is down gets them once it answers again), not those before their
 * handshake.
 */
export async function fanOut(
  context: ServerContext,
  collections: SubscriptionCollections,
  registry: SubscriptionRegistry,
  owner: string,
  limit = 100,
): Promise<number> {
  const entries = (await collections.outbox.claim(owner, limit, LEASE_MS)) as OutboxEntry[];
  if (!entries.length) return 0;
  try {
    await fanOutBatch(context, collections, registry, entries);
  } catch (error) {
    context.logger.error({ err: error, events: entries.length }, 'fanning out subscription events failed');
    for (const entry of entries) await collections.outbox.retry(entry, 5000);
    return entries.length;
  }
  for (const entry of entries) await collections.outbox.complete(entry);
  return entries.length;
}

async function fanOutBatch(
  context: ServerContext,
  collections: SubscriptionCollections,
  registry: SubscriptionRegistry,
  entries: OutboxEntry[],
): Promise<void> {
  const states = await collections.states.find({ status: { $in: ['active', 'error'] } }).toArray();
  const live: Live[] = [];
  for (const state of states) {
    const spec = await registry.current(state);
    if (spec) live.push({ state, spec });
  }
  const relevant = entries.filter((e) => live.some(({ spec }) => e.topics.includes(spec.topic.url)));
  if (!relevant.length) return;
  const versions = await context.store.db
    .collection<HistoryDocument>(HISTORY_COLLECTION)
    .find({ _id: { $in: relevant.map((e) => historyId(e.type, e.id, e.v)) } })
    .toArray();
  const resources = new Map(versions.map((v) => [v._id, v.resource as Resource | undefined]));
  const matcher = new FilterMatcher(context);
  const perSubscription = new Map<string, { events: NewEvent[]; workedBefore: boolean }>();
  for (const entry of relevant) {
    const resource = resources.get(historyId(entry.type, entry.id, entry.v));
    if (!resource) continue;
    const view = { resource, sp: entry.sp, compartments: entry.compartments };
    for (const { state, spec } of live) {
      if (!entry.topics.includes(spec.topic.url) || !(await matcher.matches(spec.filters, view))) continue;
      const group = perSubscription.get(state._id) ?? { events: [], workedBefore: false };
      group.events.push({ type: entry.type, id: entry.id, v: entry.v, method: entry.method, ts: entry.ts });
      group.workedBefore ||= entry.started === true;
      perSubscription.set(state._id, group);
    }
  }
  if (!perSubscription.size) return;
  // Marked before numbering: a process that takes these entries over after a crash checks for events
  // numbered already; one that works them first need not.
  await collections.markStarted(relevant.filter((e) => !e.started));
  await Promise.all(
    [...perSubscription].map(async ([sub, { events, workedBefore }]) => {
      if (await collections.numberEvents(sub, events, workedBefore)) await collections.wake(sub);
    }),
  );
}
