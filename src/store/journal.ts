import type { Db } from 'mongodb';
import { randomUUID } from 'node:crypto';
import { CurrentDocument, HISTORY_COLLECTION, HistoryDocument, historyId, JOURNAL_COLLECTION } from './documents';

/** One resource write inside a commit, with the version it replaces (null: the resource must not exist). */
export interface StagedWrite {
  type: string;
  id: string;
  previous: CurrentDocument | null;
  next: CurrentDocument;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
}

/** What the journal keeps of a commit in flight: enough to undo every step of it. */
interface JournalDocument {
  _id: string;
  startedAt: Date;
  writes: { type: string; id: string; v: number; previous: CurrentDocument | null }[];
}

/** Thrown when a staged write finds that another writer got there first (the version CAS failed). */
export class VersionConflictError extends Error {
  constructor(
    readonly type: string,
    readonly id: string,
    readonly index: number,
  ) {
    super(`${type}/${id} was changed by another request`);
  }
}

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 11000;
}

/**
 * Applies a set of writes all-or-nothing on any MongoDB-compatible engine.
 *
 * FerretDB 1.x has no multi-document transactions, so atomicity comes from a journal: the commit is
 * recorded (with the versions it replaces) before the first write, every write is a compare-and-set on
 * the version it expects, and the journal entry is removed only once every write and history version is
 * in place. A failed CAS undoes what was applied; a crash leaves the journal entry, and `recover`
 * undoes it at the next start (or sweep). Where the engine has transactions, the same steps also run
 * inside one, which adds isolation (readers never see a half-applied commit); the journal path stays the
 * one that is exercised everywhere.
 */
export class Journal {
  /** Test hook: called after the n-th write is applied, to inject a crash mid-commit. */
  afterWriteHook?: (index: number) => Promise<void> | void;

  constructor(private readonly db: Db) {}

  async commit(writes: StagedWrite[]): Promise<void> {
    const journal = this.db.collection<JournalDocument>(JOURNAL_COLLECTION);
    const entryId = randomUUID();
    await journal.insertOne({
      _id: entryId,
      startedAt: new Date(),
      writes: writes.map((w) => ({ type: w.type, id: w.id, v: w.next.v, previous: w.previous })),
    });
    let applied = 0;
    try {
      for (const write of writes) {
        await this.applyCurrent(write, applied);
        applied++;
        await this.afterWriteHook?.(applied);
      }
      await this.db.collection<HistoryDocument>(HISTORY_COLLECTION).insertMany(
        writes.map((w): HistoryDocument => ({
          _id: historyId(w.type, w.id, w.next.v),
          type: w.type,
          id: w.id,
          v: w.next.v,
          ts: w.next.ts,
          method: w.method,
          ...(w.next.deleted ? { deleted: true } : { resource: w.next.resource }),
        })),
        { ordered: true },
      );
    } catch (error) {
      await this.undo(
        writes.slice(0, applied).map((w) => ({ type: w.type, id: w.id, v: w.next.v, previous: w.previous })),
      );
      await journal.deleteOne({ _id: entryId });
      throw error;
    }
    await journal.deleteOne({ _id: entryId });
  }

  private async applyCurrent(write: StagedWrite, index: number): Promise<void> {
    const collection = this.db.collection<CurrentDocument>(write.type);
    if (!write.previous) {
      try {
        await collection.insertOne(write.next);
      } catch (error) {
        if (isDuplicateKey(error)) throw new VersionConflictError(write.type, write.id, index);
        throw error;
      }
      return;
    }
    const result = await collection.replaceOne({ _id: write.id, v: write.previous.v }, write.next);
    if (result.matchedCount !== 1) throw new VersionConflictError(write.type, write.id, index);
  }

  /** Restores the versions a commit replaced; idempotent, so a crash during undo is undone again later. */
  private async undo(writes: JournalDocument['writes']): Promise<void> {
    for (const write of [...writes].reverse()) {
      const collection = this.db.collection<CurrentDocument>(write.type);
      if (write.previous) {
        await collection.replaceOne({ _id: write.id, v: write.v }, write.previous);
      } else {
        await collection.deleteOne({ _id: write.id, v: write.v });
      }
      await this.db
        .collection<HistoryDocument>(HISTORY_COLLECTION)
        .deleteOne({ _id: historyId(write.type, write.id, write.v) });
    }
  }

  /**
   * Undoes the commits that were interrupted (the process died between their first write and their
   * journal removal). Only entries older than `olderThanMs` are touched, so that a sweep by one server
   * never undoes a commit another live server is still making.
   */
  async recover(olderThanMs: number): Promise<number> {
    const journal = this.db.collection<JournalDocument>(JOURNAL_COLLECTION);
    const cutoff = new Date(Date.now() - olderThanMs);
    const stale = await journal.find({ startedAt: { $lte: cutoff } }).toArray();
    for (const entry of stale) {
      await this.undo(entry.writes);
      await journal.deleteOne({ _id: entry._id });
    }
    return stale.length;
  }
}
