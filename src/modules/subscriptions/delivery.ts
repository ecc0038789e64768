import type { Subscription } from '@medplum/fhirtypes';
import type { ServerContext } from '../../rest/context';
import { VersionConflictError } from '../../store/journal';
import type { QueueEntry } from '../../store/work-queue';
import { notificationBundle, type NotificationType, type NotifiedEvent } from './notification';
import { restoreRequester } from '../../auth/stored-requester';
import type { SubscriptionRegistry } from './registry';
import { postNotification } from './send';
import type { SubscriptionSpec } from './spec';
import type { RuntimeStatus, SubscriptionCollections, SubscriptionState } from './state';
import { visibleFoci } from './visibility';

/** Longer than one delivery can take (the POST's timeout plus reading its events). */
const LEASE_MS = 120_000;

export interface DeliveryOptions {
  context: ServerContext;
  collections: SubscriptionCollections;
  registry: SubscriptionRegistry;
  owner: string;
}

/**
 * Works the delivery queue: one entry per subscription with something to send, leased to one process
 * at a time, so a subscription's notifications go out one at a time and in event-number order.
 * - `requested`: the handshake; it answers → `active`.
 * - events pending: one notification with up to maxCount of them, in number order; delivered → their
 *   `pending` mark goes, and the rest are queued again at once.
 * - nothing pending and a heartbeat due (or the subscription in `error`, where it is the probe): a
 *   heartbeat.
 * A failed attempt is retried with backoff (retryBaseMs doubled per attempt, at most retryMaxMs);
 * after maxAttempts in a row the subscription goes to `error` and keeps being probed at that pace;
 * the first answer puts it back to `active` and its pending events follow.
 */
export async function deliverDue(options: DeliveryOptions, limit = 10): Promise<number> {
  const { collections, owner } = options;
  const entries = await collections.delivery.claim(owner, limit, LEASE_MS);
  await Promise.all(
    entries.map((entry) =>
      deliverEntry(options, entry).catch(async (error: unknown) => {
        options.context.logger.error({ err: error, subscription: entry._id }, 'subscription delivery failed');
        await collections.delivery.retry(entry, options.context.config.subscriptions.retryMaxMs);
      }),
    ),
  );
  return entries.length;
}

async function deliverEntry(options: DeliveryOptions, entry: QueueEntry): Promise<void> {
  const { context, collections, registry } = options;
  const config = context.config.subscriptions;
  const state = await collections.states.findOne({ _id: entry._id });
  const spec = state ? await registry.current(state) : undefined;
  if (!state || !spec || state.status === 'off') {
    await collections.delivery.complete(entry);
    return;
  }
  const send = async (type: NotificationType, events: NotifiedEvent[] = []) => {
    const fresh = (await collections.states.findOne({ _id: state._id })) ?? state;
    const body = JSON.stringify(
      notificationBundle(
        {
          baseUrl: baseUrl(context),
          subscriptionId: state._id,
          topic: spec.topic.url,
          status: type === 'handshake' ? 'requested' : fresh.status,
          type,
          eventsSinceStart: fresh.count ?? 0,
          events,
        },
        spec.content,
      ),
    );
    return postNotification(
      spec.endpoint,
      body,
      await collections.secretOf(state),
      spec.headers,
      spec.timeoutMs ?? config.timeoutMs,
    );
  };

  let result;
  let delivered: string[] = [];
  let more = false;
  if (state.status === 'requested' || !state.handshaken) {
    // Not before every live process writes this subscription's events: activating it earlier could
    // miss the events of a process whose definitions feed has not brought it yet.
    const { processes } = context.store;
    // An earlier run of this very server is over (as the journal's recovery holds it), whatever its heartbeat.
    const live = (await processes.live()).filter(
      (p) => p.server !== processes.serverId || p._id === processes.incarnation,
    );
    if (!live.every((p) => state.seenBy?.includes(p._id))) {
      await collections.postpone(entry, Math.min(500, config.retryMaxMs));
      return;
    }
    result = await send('handshake');
    if (result.ok) await collections.states.updateOne({ _id: state._id }, { $set: { handshaken: true } });
  } else {
    const pending = await collections.events
      .find({ sub: state._id, pending: true })
      .sort({ number: 1 })
      .limit(spec.maxCount + 1)
      .toArray();
    more = pending.length > spec.maxCount;
    const batch = pending.slice(0, spec.maxCount);
    if (batch.length) {
      const policy = await context.access.policyFor(restoreRequester(state.owner));
      const foci = spec.content === 'empty' ? new Map() : await visibleFoci(context, policy, batch);
      // Not visible: the event keeps its number (so counts stay continuous) but carries no focus.
      const events: NotifiedEvent[] = batch.map((event) => {
        const resource = foci.get(event);
        return {
          number: event.number,
          ts: event.ts,
          ...(resource ? { focus: { type: event.type, id: event.id, method: event.method, resource } } : {}),
        };
      });
      result = await send('event-notification', events);
      delivered = batch.map((e) => e._id);
    } else if (heartbeatDue(state, spec) || state.status === 'error') {
      result = await send('heartbeat');
    } else {
      await collections.delivery.complete(entry);
      return;
    }
  }

  if (!result.ok) {
    const attempts = (entry.attempts ?? 0) + 1;
    context.logger.warn({ subscription: state._id, attempts, error: result.error }, 'notification not delivered');
    if (attempts >= config.maxAttempts && state.status !== 'error') {
      await setStatus(options, state, 'error', `${result.error} (${attempts} attempts)`);
    } else {
      await collections.states.updateOne({ _id: state._id }, { $set: { lastError: result.error } });
    }
    const delay = Math.min(config.retryMaxMs, config.retryBaseMs * 2 ** Math.min(attempts - 1, 20));
    await collections.delivery.retry(entry, delay);
    return;
  }
  if (delivered.length) await collections.events.updateMany({ _id: { $in: delivered } }, { $unset: { pending: '' } });
  await collections.states.updateOne(
    { _id: state._id },
    { $set: { lastSentAt: new Date() }, $unset: { lastError: '' } },
  );
  if (state.status !== 'active') await setStatus(options, state, 'active');
  const finished = await collections.delivery.complete(entry);
  // More pending than one notification carries, or the handshake done and events may be waiting.
  if (finished && (more || delivered.length === 0)) {
    const waiting = await collections.events.findOne({ sub: state._id, pending: true }, { projection: { _id: 1 } });
    if (waiting) await collections.wake(state._id);
  }
}

function heartbeatDue(state: SubscriptionState, spec: SubscriptionSpec): boolean {
  if (!spec.heartbeatMs) return false;
  const last = state.lastSentAt?.getTime() ?? state.activatedAt?.getTime() ?? 0;
  return Date.now() - last >= spec.heartbeatMs;
}

/**
 * Puts a subscription in `status`: the shared state first (what the workers go by), then the
 * Subscription resource itself, as a new version written by the server (the client sees `error`
 * with its reason, or `active`, on its next read).
 */
async function setStatus(options: DeliveryOptions, state: SubscriptionState, status: RuntimeStatus, error?: string) {
  const { context, collections } = options;
  await collections.states.updateOne(
    { _id: state._id },
    {
      $set: {
        status,
        ...(status === 'active' ? { activatedAt: new Date() } : {}),
        ...(error ? { lastError: error } : {}),
      },
    },
  );
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await context.store.read('Subscription', state._id);
    if (!current || current.deleted) return;
    const subscription = current.resource as Subscription;
    if (subscription.status === 'off') return;
    const { error: _previous, ...rest } = subscription;
    const next: Subscription = { ...rest, status, ...(error ? { error } : {}) };
    if (subscription.status === status && subscription.error === next.error) return;
    try {
      await context.store.commit([
        { type: 'Subscription', id: state._id, method: 'PUT', previous: current, resource: next },
      ]);
      // The state names the version the server wrote, so the registry does not read it again for nothing.
      await collections.states.updateOne({ _id: state._id, v: { $lt: current.v + 1 } }, { $set: { v: current.v + 1 } });
      return;
    } catch (e) {
      if (!(e instanceof VersionConflictError)) throw e;
    }
  }
}

function baseUrl(context: ServerContext): string {
  return (
    context.config.publicBaseUrl ??
    `http://${context.config.host === '0.0.0.0' ? 'localhost' : context.config.host}:${context.config.port}/fhir`
  );
}
