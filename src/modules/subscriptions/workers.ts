import type { ServerContext } from '../../rest/context';
import { deliverDue } from './delivery';
import { fanOut } from './fanout';
import type { SubscriptionRegistry } from './registry';
import type { SubscriptionCollections } from './state';

export interface Workers {
  /** Asks for a round soon (a commit of this process wrote outbox entries). */
  nudge(): void;
  stop(): Promise<void>;
}

/** How often the heartbeat and retention sweeps run, besides the fan-out and delivery rounds. */
const SWEEP_MS = 1000;
const RETENTION_SWEEP_MS = 3600_000;

/**
 * The background work of one server process: fan-out of the outbox, delivery, heartbeats and the
 * ageing out of delivered events. Every process runs it; the queues' leases share the work out.
 */
export function startWorkers(
  context: ServerContext,
  collections: SubscriptionCollections,
  registry: SubscriptionRegistry,
): Workers {
  const config = context.config.subscriptions;
  const owner = `${context.store.processes.serverId}:${context.store.processes.incarnation}`;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let lastSweep = 0;
  let lastRetention = Date.now();

  const round = async (): Promise<void> => {
    // Until the queues are empty for now: a burst of writes is worked off without waiting for the timer.
    for (let i = 0; i < 50 && !stopped; i++) {
      const fanned = await fanOut(context, collections, registry, owner);
      const delivered = await deliverDue({ context, collections, registry, owner });
      if (!fanned && !delivered) break;
    }
    if (Date.now() - lastSweep >= SWEEP_MS) {
      lastSweep = Date.now();
      await wakeHeartbeats(collections);
    }
    if (Date.now() - lastRetention >= RETENTION_SWEEP_MS) {
      lastRetention = Date.now();
      await collections.events.deleteMany({
        ts: { $lt: new Date(Date.now() - config.eventRetentionMs) },
        pending: { $exists: false },
      });
    }
  };

  const run = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = round()
      .catch((error: unknown) => context.logger.error({ err: error }, 'subscription workers failed'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  };

  const timer = setInterval(run, config.pollMs);
  timer.unref();
  return {
    nudge: () => setImmediate(run),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/** Queues the active subscriptions whose heartbeat period has passed since they last sent anything. */
async function wakeHeartbeats(collections: SubscriptionCollections): Promise<void> {
  const now = Date.now();
  const states = await collections.states.find({ status: 'active', heartbeatMs: { $gt: 0 } }).toArray();
  for (const state of states) {
    const last = state.lastSentAt?.getTime() ?? state.activatedAt?.getTime() ?? 0;
    if (now - last >= (state.heartbeatMs as number)) await collections.wake(state._id);
  }
}
