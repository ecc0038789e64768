import type { ClientSession, Db, MongoClient } from 'mongodb';
import { MongoBulkWriteError } from 'mongodb';
import { randomUUID } from 'node:crypto';
import {
  ClaimDocument,
  CLAIMS_COLLECTION,
  CurrentDocument,
  HISTORY_COLLECTION,
  HistoryDocument,
  historyId,
  JOURNAL_COLLECTION,
} from './documents';
import { WriteGate } from './write-gate';

/** One resource write inside a commit, with the version it replaces (null: the resource must not exist). */
export interface StagedWrite {
  type: string;
  id: string;
  previous: CurrentDocument | null;
  next: CurrentDocument;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Conditional-create conditions this write claims (see CLAIMS_COLLECTION). */
  claims?: string[];
}

/** What the journal keeps of a commit in flight: enough to undo every step of it. */
interface JournalDocument {
  _id: string;
  startedAt: Date;
  writes: { type: string; id: string; v: number; previous: CurrentDocument | null; claims?: string[] }[];
}

/** Thrown when a staged write finds that another writer got there first. */
export class VersionConflictError extends Error {
  constructor(
    readonly type: string,
    readonly id: string,
    readonly index: number,
  ) {
    super(`${type}/${id} was changed by another request`);
  }
}

/** Thrown when another writer already holds a conditional-create claim this commit needs. */
export class ClaimTakenError extends Error {
  constructor(
    readonly claim: string,
    readonly index: number,
  ) {
    super(`another request already created the resource for ${claim}`);
  }
}

/** The index of the document an ordered insertMany stopped at on a duplicate key, if that is why it failed. */
function duplicateKeyIndex(error: unknown): number | undefined {
  const errors = error instanceof MongoBulkWriteError ? error.writeErrors : undefined;
  const first = Array.isArray(errors) ? errors[0] : errors;
  return first?.code === 11000 ? first.index : undefined;
}

/** A history version carries the commit that wrote it, so an undo removes only its own versions. */
type JournaledHistoryDocument = HistoryDocument & { tx: string };

/**
 * Applies a set of writes all-or-nothing on any MongoDB-compatible engine.
 *
 * The version lock is the insert of each new history version, whose _id is "Type/id/version": a unique
 * key is atomic on every engine, whereas FerretDB 1.x evaluates `updateOne({_id, v})` as a read followed
 * by a write, so two writers can both "match" the same version (measured: up to 13 of 20 concurrent
 * compare-and-sets succeeded). Steps:
 *  1. record the commit in the journal, with the versions it replaces;
 *  2. insert every new history version: a duplicate key means another writer owns that version, and the
 *     commit is abandoned before any current document changed;
 *  3. replace the current documents (still guarded by the expected version, which real MongoDB enforces);
 *  4. remove the journal entry: from here the commit is durable and visible as a whole.
 * A failure undoes what this commit wrote; a crash leaves the journal entry, and `recover` undoes it at
 * the next start or sweep.
 */
export class Journal {
  /** Test hook: called after the n-th current document is replaced, to inject a crash mid-commit. */
  afterWriteHook?: (applied: number) => Promise<void> | void;

  /**
   * @param transactions where given (a MongoDB replica set or mongos), the writes of a commit also run
   * inside one multi-document transaction, so readers never see part of a commit.
   */
  constructor(
    private readonly db: Db,
    private readonly transactions?: MongoClient,
    /** Shared by every replace of a current document, so a reindex batch never straddles one. */
    private readonly gate = new WriteGate(),
  ) {}

  async commit(writes: StagedWrite[]): Promise<void> {
    const journal = this.db.collection<JournalDocument>(JOURNAL_COLLECTION);
    const tx = randomUUID();
    const entry: JournalDocument = {
      _id: tx,
      startedAt: new Date(),
      writes: writes.map((w) => ({ type: w.type, id: w.id, v: w.next.v, previous: w.previous, claims: w.claims })),
    };
    await journal.insertOne(entry);
    try {
      if (this.transactions) {
        await this.transactions.withSession((session) =>
          session.withTransaction(() => this.applyWrites(writes, tx, session)),
        );
      } else {
        await this.applyWrites(writes, tx);
      }
    } catch (error) {
      await this.undo(entry);
      throw error;
    }
    await journal.deleteOne({ _id: tx });
  }

  private async applyWrites(writes: StagedWrite[], tx: string, session?: ClientSession): Promise<void> {
    await this.claim(writes, tx, session);
    await this.lockVersions(writes, tx, session);
    let applied = 0;
    for (const write of writes) {
      await this.replaceCurrent(write, applied, session);
      applied++;
      await this.afterWriteHook?.(applied);
    }
  }

  private async claim(writes: StagedWrite[], tx: string, session?: ClientSession): Promise<void> {
    const claims = writes.flatMap((w, index) =>
      (w.claims ?? []).map((key) => ({ doc: { _id: key, type: w.type, id: w.id, tx } as ClaimDocument, index })),
    );
    if (!claims.length) return;
    try {
      await this.db.collection<ClaimDocument>(CLAIMS_COLLECTION).insertMany(
        claims.map((c) => c.doc),
        { ordered: true, session },
      );
    } catch (error) {
      const first = duplicateKeyIndex(error);
      if (first !== undefined) throw new ClaimTakenError(claims[first].doc._id, claims[first].index);
      throw error;
    }
  }

  private async lockVersions(writes: StagedWrite[], tx: string, session?: ClientSession): Promise<void> {
    const versions = writes.map((w): JournaledHistoryDocument => ({
      _id: historyId(w.type, w.id, w.next.v),
      type: w.type,
      id: w.id,
      v: w.next.v,
      ts: w.next.ts,
      method: w.method,
      tx,
      ...(w.next.deleted ? { deleted: true } : { resource: w.next.resource }),
    }));
    try {
      await this.db
        .collection<JournaledHistoryDocument>(HISTORY_COLLECTION)
        .insertMany(versions, { ordered: true, session });
    } catch (error) {
      const first = duplicateKeyIndex(error);
      if (first !== undefined) throw new VersionConflictError(writes[first].type, writes[first].id, first);
      throw error;
    }
  }

  private async replaceCurrent(write: StagedWrite, index: number, session?: ClientSession): Promise<void> {
    await this.gate.shared(write.type, () => this.replaceCurrentNow(write, index, session));
  }

  private async replaceCurrentNow(write: StagedWrite, index: number, session?: ClientSession): Promise<void> {
    const collection = this.db.collection<CurrentDocument>(write.type);
    if (!write.previous) {
      try {
        await collection.insertOne(write.next, { session });
      } catch (error) {
        if ((error as { code?: unknown }).code === 11000) throw new VersionConflictError(write.type, write.id, index);
        throw error;
      }
      return;
    }
    const result = await collection.replaceOne({ _id: write.id, v: write.previous.v }, write.next, { session });
    if (result.matchedCount !== 1) throw new VersionConflictError(write.type, write.id, index);
  }

  /**
   * Restores the versions a commit replaced and removes the versions it wrote; idempotent. A write whose
   * history version this commit does not own (it lost the race for it) is left alone: the current
   * document then belongs to the winner.
   */
  private async undo(entry: JournalDocument): Promise<void> {
    const history = this.db.collection<JournaledHistoryDocument>(HISTORY_COLLECTION);
    for (const write of [...entry.writes].reverse()) {
      const versionKey = { _id: historyId(write.type, write.id, write.v), tx: entry._id };
      if (!(await history.findOne(versionKey, { projection: { _id: 1 } }))) continue;
      const collection = this.db.collection<CurrentDocument>(write.type);
      const previous = write.previous;
      await this.gate.shared(write.type, async () => {
        if (previous) await collection.replaceOne({ _id: write.id, v: write.v }, previous);
        else await collection.deleteOne({ _id: write.id, v: write.v });
      });
      // Removed last, so a crash during undo leaves the ownership mark for the next attempt.
      await history.deleteOne(versionKey);
    }
    const claims = entry.writes.flatMap((w) => w.claims ?? []);
    if (claims.length) {
      await this.db.collection<ClaimDocument>(CLAIMS_COLLECTION).deleteMany({ _id: { $in: claims }, tx: entry._id });
    }
    await this.db.collection<JournalDocument>(JOURNAL_COLLECTION).deleteOne({ _id: entry._id });
  }

  /**
   * Undoes the commits that were interrupted (the process died between its journal entry and its
   * removal). Only entries older than `olderThanMs` are touched, so that a sweep by one server never
   * undoes a commit another live server is still making.
   */
  async recover(olderThanMs: number): Promise<number> {
    const journal = this.db.collection<JournalDocument>(JOURNAL_COLLECTION);
    const cutoff = new Date(Date.now() - olderThanMs);
    const stale = await journal.find({ startedAt: { $lte: cutoff } }).toArray();
    for (const entry of stale) await this.undo(entry);
    return stale.length;
  }
}
