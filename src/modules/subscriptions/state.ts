import { randomUUID } from 'node:crypto';
import { MongoBulkWriteError, type Collection, type Db } from 'mongodb';
import { withEngineRetry } from '../../store/engine-errors';
import { WorkQueue, type QueueEntry } from '../../store/work-queue';
import type { StoredRequester } from '../../auth/stored-requester';

export type RuntimeStatus = 'requested' | 'active' | 'error' | 'off';

/** A subscription's delivery state, beside its resource: what every server process's workers share. */
export interface SubscriptionState {
  _id: string;
  status: RuntimeStatus;
  /** The version of the Subscription this state was last written for. */
  v: number;
  owner: StoredRequester;
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

/** An event to number: the version it is about. */
export type NewEvent = Omit<EventRecord, '_id' | 'sub' | 'number' | 'pending'>;

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
   * Numbers events for a subscription, once each, in the order given. The numbers come from the
   * subscription's counter, raised atomically by the batch's size (`$inc` on one document, which every
   * engine applies as one write), so two processes numbering events of one subscription at once get
   * disjoint ranges, each above any given before: numbers increase in the order events are numbered.
   * A record's _id names the subscription and the version, so an event numbered already (its outbox
   * entry was worked again after a crash or a lost lease: `workedBefore`) is found and left out; a
   * crash between the increment and the insert leaves numbers unused: numbers then skip, never repeat
   * or go back. Returns how many were numbered.
   */
  async numberEvents(sub: string, events: NewEvent[], workedBefore: boolean): Promise<number> {
    const keyed = events.map((event) => ({ _id: `${sub}:${event.type}/${event.id}/${event.v}`, event }));
    let fresh = keyed;
    if (workedBefore) {
      const found = await this.events
        .find({ _id: { $in: keyed.map((k) => k._id) } }, { projection: { _id: 1 } })
        .toArray();
      const numbered = new Set(found.map((f) => f._id));
      fresh = keyed.filter((k) => !numbered.has(k._id));
    }
    if (!fresh.length) return 0;
    const state = await withEngineRetry(() =>
      this.states.findOneAndUpdate({ _id: sub }, { $inc: { count: fresh.length } }, { returnDocument: 'after' }),
    );
    if (!state) return 0;
    const first = (state.count as number) - fresh.length + 1;
    try {
      await this.events.insertMany(
        fresh.map(({ _id, event }, i) => ({ _id, sub, number: first + i, ...event, pending: true as const })),
        { ordered: false },
      );
    } catch (error) {
      // Another worker numbered some of them meanwhile (a lease that ran out): theirs stand.
      if (!(error instanceof MongoBulkWriteError) || error.writeErrors === undefined) throw error;
      const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
      if (writeErrors.some((e) => e.code !== 11000)) throw error;
    }
    return fresh.length;
  }

  async secretOf(state: SubscriptionState): Promise<string | undefined> {
    if (!state.secretRef) return undefined;
    return (await this.secrets.findOne({ _id: state.secretRef }))?.secret;
  }

  /** Marks outbox entries as being numbered (see fanOut). */
  async markStarted(entries: QueueEntry[]): Promise<void> {
    if (!entries.length) return;
    await withEngineRetry(() =>
      this.db
        .collection<{ _id: string }>(OUTBOX_QUEUE)
        .updateMany({ _id: { $in: entries.map((e) => e._id) } }, { $set: { started: true } }),
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
