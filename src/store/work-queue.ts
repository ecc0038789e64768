import { randomUUID } from 'node:crypto';
import type { Collection, Db, Filter, UpdateFilter } from 'mongodb';
import type { SideDocument } from './journal';
import { withEngineRetry } from './engine-errors';

/** One entry of a work queue: a key (a patient, an outbox event) and when it may next be worked on. */
export interface QueueEntry {
  _id: string;
  /** Changed by every enqueue: a worker that finishes an entry whose token moved must run it again. */
  token: string;
  due: Date;
  attempts?: number;
  leaseUntil?: Date;
  leasedBy?: string;
  [field: string]: unknown;
}

/** Due entries listed beyond the claim's limit: room for those other processes hold leases on. */
const CLAIM_SLACK = 16;

/**
 * A durable queue shared by every server process on one database. Entries are written with the commit
 * that causes them (`entry()`, a SideDocument), so a crash between a write and its work loses nothing;
 * one entry per key, so a key queued many times is worked once; a worker leases an entry before working
 * on it, so two processes never work the same entry at once, and an entry whose worker died is taken up
 * again when its lease runs out.
 */
export class WorkQueue {
  constructor(
    private readonly db: Db,
    readonly collectionName: string,
  ) {}

  private get entries(): Collection<QueueEntry> {
    return this.db.collection<QueueEntry>(this.collectionName);
  }

  async ensureIndexes(): Promise<void> {
    await this.entries.createIndex({ due: 1 });
  }

  /** The queue entry for `key`, to write in the same commit as what causes it. */
  entry(key: string, fields: Record<string, unknown> = {}, due = new Date()): SideDocument {
    return {
      collection: this.collectionName,
      _id: key,
      mode: 'upsert',
      fields: { ...fields, token: randomUUID(), due },
    };
  }

  /** Queues keys outside any commit (a scheduled sweep). */
  async enqueue(keys: string[], fields: Record<string, unknown> = {}, due = new Date()): Promise<void> {
    if (!keys.length) return;
    await withEngineRetry(() =>
      this.entries.bulkWrite(
        keys.map((key) => ({
          updateOne: { filter: { _id: key }, update: { $set: { ...fields, token: randomUUID(), due } }, upsert: true },
        })),
        { ordered: false },
      ),
    );
  }

  /**
   * Leases up to `limit` due entries for `owner` (a process id) for `leaseMs`. A few due entries are
   * listed (a limited find on the `due` index) and each free one is then leased by its `_id`: a
   * findOneAndUpdate sorted by `due` over every due entry cost the embedded engine a scan of them all,
   * 110 ms per entry with a sweep's 10,000 waiting. Unsorted, the engine lists them in the order they
   * were first queued. A lease another process took meanwhile is skipped.
   */
  async claim(owner: string, limit: number, leaseMs: number, now = new Date()): Promise<QueueEntry[]> {
    const claimed: QueueEntry[] = [];
    const free: Filter<QueueEntry> = { $or: [{ leaseUntil: { $exists: false } }, { leaseUntil: { $lt: now } }] };
    const lease = { $set: { leaseUntil: new Date(now.getTime() + leaseMs), leasedBy: owner } };
    // Leased entries stay due, so the first ones listed may all be taken: list more until enough are free.
    for (let window = limit + CLAIM_SLACK; ; window *= 4) {
      const listed = await withEngineRetry(() =>
        this.entries.find({ due: { $lte: now } }, { limit: window, projection: { _id: 1, leaseUntil: 1 } }).toArray(),
      );
      for (const candidate of listed) {
        if (claimed.length >= limit) return claimed;
        if (candidate.leaseUntil && candidate.leaseUntil >= now) continue;
        if (claimed.some((c) => c._id === candidate._id)) continue;
        const entry = await withEngineRetry(() =>
          this.entries.findOneAndUpdate({ _id: candidate._id, due: { $lte: now }, ...free }, lease, {
            returnDocument: 'after',
          }),
        );
        if (entry) claimed.push(entry);
      }
      if (claimed.length >= limit || listed.length < window) return claimed;
    }
  }

  /**
   * Removes a worked entry, unless it was queued again meanwhile (its token moved): then it is released
   * for another run. Returns whether the entry is gone.
   */
  async complete(entry: QueueEntry): Promise<boolean> {
    const removed = await withEngineRetry(() => this.entries.deleteOne({ _id: entry._id, token: entry.token }));
    if (removed.deletedCount === 1) return true;
    await this.release(entry, {});
    return false;
  }

  /**
   * complete() for several entries in two commands rather than one or two each: the deletions in one
   * bulk write; if any entry stayed (it was queued again meanwhile), every entry's lease is given up
   * in a second, which for those already gone changes nothing.
   */
  async completeAll(entries: QueueEntry[]): Promise<void> {
    if (entries.length <= 1) {
      if (entries.length) await this.complete(entries[0]);
      return;
    }
    const removed = await withEngineRetry(() =>
      this.entries.bulkWrite(
        entries.map((entry) => ({ deleteOne: { filter: { _id: entry._id, token: entry.token } } })),
        { ordered: false },
      ),
    );
    if (removed.deletedCount === entries.length) return;
    await withEngineRetry(() =>
      this.db.collection<{ _id: string }>(this.collectionName).bulkWrite(
        entries.map((entry) => ({
          updateOne: {
            filter: { _id: entry._id, leasedBy: entry.leasedBy },
            update: { $unset: { leaseUntil: '', leasedBy: '' } },
          },
        })),
        { ordered: false },
      ),
    );
  }

  /** Gives the entry back to be worked again after `delayMs` (a failed delivery), counting the attempt. */
  async retry(entry: QueueEntry, delayMs: number, fields: Record<string, unknown> = {}): Promise<void> {
    await this.release(entry, { ...fields, due: new Date(Date.now() + delayMs) }, true);
  }

  /** Keeps the lease of an entry that takes long to work. */
  async extend(entry: QueueEntry, leaseMs: number): Promise<boolean> {
    const result = await withEngineRetry(() =>
      this.entries.updateOne(
        { _id: entry._id, leasedBy: entry.leasedBy },
        { $set: { leaseUntil: new Date(Date.now() + leaseMs) } },
      ),
    );
    return result.matchedCount === 1;
  }

  async size(): Promise<number> {
    return this.entries.countDocuments({});
  }

  private async release(entry: QueueEntry, set: Record<string, unknown>, countAttempt = false): Promise<void> {
    // Untyped: the entry's own fields (set by its producer) are not part of QueueEntry's declared shape.
    const update: UpdateFilter<{ _id: string }> = { $unset: { leaseUntil: '', leasedBy: '' } };
    if (Object.keys(set).length) update.$set = set;
    if (countAttempt) update.$inc = { attempts: 1 };
    await withEngineRetry(() =>
      this.db
        .collection<{ _id: string }>(this.collectionName)
        .updateOne({ _id: entry._id, leasedBy: entry.leasedBy }, update),
    );
  }
}
