import type { Resource } from '@medplum/fhirtypes';
import type { ServerContext } from '../../rest/context';
import type { QueueEntry } from '../../store/work-queue';
import { FilterMatcher } from './filters';
import type { OutboxFields } from './outbox';
import type { SubscriptionRegistry } from './registry';
import type { SubscriptionSpec } from './spec';
import type { SubscriptionCollections, SubscriptionState } from './state';

interface Live {
  state: SubscriptionState;
  spec: SubscriptionSpec;
}

/** How long one process holds an outbox entry: longer than numbering its events can take. */
const LEASE_MS = 30_000;

/**
 * Turns outbox entries (committed versions) into numbered events of the subscriptions whose topic and
 * filters they match, and wakes those subscriptions' delivery. Runs in every process; the queue's
 * leases give each entry to one process at a time, and numberEvent makes working an entry twice
 * harmless. Subscriptions receive the events fanned out while they are `active` or `error` (an
 * endpoint that is down gets them once it answers again), not those before their handshake.
 */
export async function fanOut(
  context: ServerContext,
  collections: SubscriptionCollections,
  registry: SubscriptionRegistry,
  owner: string,
  limit = 100,
): Promise<number> {
  const entries = await collections.outbox.claim(owner, limit, LEASE_MS);
  if (!entries.length) return 0;
  const states = await collections.states.find({ status: { $in: ['active', 'error'] } }).toArray();
  const live: Live[] = [];
  for (const state of states) {
    const spec = await registry.current(state);
    if (spec) live.push({ state, spec });
  }
  const matcher = new FilterMatcher(context);
  const woken = new Set<string>();
  for (const entry of entries) {
    try {
      await fanOutEntry(context, collections, matcher, live, entry, woken);
      await collections.outbox.complete(entry);
    } catch (error) {
      context.logger.error({ err: error, event: entry._id }, 'fanning out a subscription event failed');
      await collections.outbox.retry(entry, 5000);
    }
  }
  for (const sub of woken) await collections.wake(sub);
  return entries.length;
}

async function fanOutEntry(
  context: ServerContext,
  collections: SubscriptionCollections,
  matcher: FilterMatcher,
  live: Live[],
  entry: QueueEntry,
  woken: Set<string>,
): Promise<void> {
  const event = entry as unknown as QueueEntry & OutboxFields & { started?: boolean };
  const candidates = live.filter(({ spec }) => event.topics.includes(spec.topic.url));
  if (!candidates.length) return;
  const version = await context.store.vread(event.type, event.id, event.v);
  const resource = version?.resource as Resource | undefined;
  if (!resource) return;
  const view = { resource, sp: event.sp, compartments: event.compartments };
  const matching: Live[] = [];
  for (const live of candidates) if (await matcher.matches(live.spec.filters, view)) matching.push(live);
  if (!matching.length) return;
  // Marked before numbering: a process that takes the entry over after a crash checks for events
  // numbered already; one that works it first need not (one write per event, not per subscription).
  const workedBefore = event.started === true;
  if (!workedBefore) await collections.markStarted(entry);
  await Promise.all(
    matching.map(async ({ state }) => {
      const fields = { type: event.type, id: event.id, v: event.v, method: event.method, ts: event.ts };
      if (await collections.numberEvent(state._id, fields, workedBefore)) woken.add(state._id);
    }),
  );
}
