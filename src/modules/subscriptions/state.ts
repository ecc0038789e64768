import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { withEngineRetry } from '../../store/engine-errors';
import { WorkQueue, type QueueEntry } from '../../store/work-queue';
import type { StoredOwner } from './owner';

export type RuntimeStatus = 'requested' | 'active' | 'error' | 'off';

/** A subscription's delivery state, beside its resource: what every server process's workers share. */
export interface SubscriptionState {
  _id: string;
  status: RuntimeStatus;
  /** The version of the Subscription this state was last written for. */
  v: number;
  owner: StoredOwner;
  /** The secret document (`_subscription_secrets`) notifications are signed with. */
  secretRef?: string;
  /** Events numbered so far: the last event number (see numberEvent). */
  count?: number;
  handshaken?: boolean;
  lastSentAt?: Date;
  heartbeatMs?: number;
  lastError?: string;
  activatedAt?: Date;
  /**
   * The process incarnations whose registry holds this subscription (so their commits write its
   * events to the outbox): the handshake waits until every live process is among them.
   */
  seenBy?: string[];
}

/** One event of one subscription: replayable by $events until it ages out, `pending` until delivered. */
export interface EventRecord {
  /** `subscription:Type/id/v`: an event is numbered once per subscription. */
  _id: string;
  sub: string;
  number: number;
  type: string;
  id: string;
  v: number;
  method: string;
  ts: Date;
  pending?: true;
}

export const STATE_COLLECTION = '_subscription_state';
export const SECRETS_COLLECTION = '_subscription_secrets';
export const EVENTS_COLLECTION = '_subscription_events';
/** Committed versions that may be events of some topic, written with their commit. */
export const OUTBOX_QUEUE = '_subscription_outbox';
/** One entry per subscription with something to send (a handshake, events, a heartbeat). */
export const DELIVERY_QUEUE = '_subscription_delivery';

/** The collections of the subscriptions module, shared by every server process on one database. */
export class SubscriptionCollections {
  readonly outbox: WorkQueue;
  readonly delivery: WorkQueue;

  constructor(readonly db: Db) {
    this.outbox = new WorkQueue(db, OUTBOX_QUEUE);
    this.delivery = new WorkQueue(db, DELIVERY_QUEUE);
  }

  get states(): Collection<SubscriptionState> {
    return this.db.collection<SubscriptionState>(STATE_COLLECTION);
  }

  get events(): Collection<EventRecord> {
    return this.db.collection<EventRecord>(EVENTS_COLLECTION);
  }

  get secrets(): Collection<{ _id: string; secret: string }> {
    return this.db.collection<{ _id: string; secret: string }>(SECRETS_COLLECTION);
  }

  async ensureIndexes(): Promise<void> {
    await this.outbox.ensureIndexes();
    await this.delivery.ensureIndexes();
    await this.events.createIndex({ sub: 1, number: 1 });
    await this.events.createIndex({ ts: 1 });
  }

  /**
   * Numbers an event for a subscription, once. The number comes from the subscription's counter,
   * incremented atomically (`$inc` on one document, which every engine applies as one write), so two
   * processes numbering events of one subscription at once get different numbers, each larger than
   * any given before: numbers increase in the order events are numbered. The record's _id names the
   * subscription and the version, so an event numbered already (its outbox entry was worked again after
   * a crash or a lost lease: `workedBefore`) is found and not numbered twice. A crash between the increment and the
   * insert leaves one number unused: numbers then skip, never repeat or go back.
   */
  async numberEvent(
    sub: string,
    event: Omit<EventRecord, '_id' | 'sub' | 'number' | 'pending'>,
    workedBefore: boolean,
  ): Promise<boolean> {
    const _id = `${sub}:${event.type}/${event.id}/${event.v}`;
    // Only an outbox entry worked before (see fanOut) can have numbered events already.
    if (workedBefore && (await this.events.findOne({ _id }, { projection: { _id: 1 } }))) return false;
    const state = await withEngineRetry(() =>
      this.states.findOneAndUpdate({ _id: sub }, { $inc: { count: 1 } }, { returnDocument: 'after' }),
    );
    if (!state) return false;
    try {
      await this.events.insertOne({ _id, sub, number: state.count as number, ...event, pending: true });
    } catch (error) {
      if ((error as { code?: unknown }).code === 11000) return false;
      throw error;
    }
    return true;
  }

  async secretOf(state: SubscriptionState): Promise<string | undefined> {
    if (!state.secretRef) return undefined;
    return (await this.secrets.findOne({ _id: state.secretRef }))?.secret;
  }

  /** Marks an outbox entry as being numbered (see fanOut). */
  async markStarted(entry: QueueEntry): Promise<void> {
    await withEngineRetry(() =>
      this.db.collection<{ _id: string }>(OUTBOX_QUEUE).updateOne({ _id: entry._id }, { $set: { started: true } }),
    );
  }

  /** Records that a process's registry holds the subscription (see SubscriptionState.seenBy). */
  async markSeen(sub: string, incarnation: string): Promise<void> {
    await withEngineRetry(() =>
      this.states.updateOne({ _id: sub }, { $addToSet: { seenBy: incarnation } }, { upsert: true }),
    );
  }

  /** Gives a delivery entry back to be worked after `delayMs`, without counting a failed attempt. */
  async postpone(entry: QueueEntry, delayMs: number): Promise<void> {
    await withEngineRetry(() =>
      this.db
        .collection<{ _id: string }>(DELIVERY_QUEUE)
        .updateOne(
          { _id: entry._id, leasedBy: entry.leasedBy },
          { $set: { due: new Date(Date.now() + delayMs) }, $unset: { leaseUntil: '', leasedBy: '' } },
        ),
    );
  }

  /**
   * Queues a subscription for its worker. An entry already there keeps its due time (a failing
   * endpoint keeps its backoff) but gets a new token, so a worker busy with it runs it again.
   */
  async wake(sub: string): Promise<void> {
    await withEngineRetry(() =>
      this.db
        .collection<{ _id: string }>(DELIVERY_QUEUE)
        .updateOne(
          { _id: sub },
          { $set: { token: randomUUID() }, $setOnInsert: { due: new Date() } },
          { upsert: true },
        ),
    );
  }
}
