import type { ClientSession, Db, MongoClient } from 'mongodb';
import { MongoBulkWriteError } from 'mongodb';
import { randomUUID } from 'node:crypto';
import {
  ClaimDocument,
  CLAIMS_COLLECTION,
  CurrentDocument,
  DECISIONS_COLLECTION,
  HISTORY_COLLECTION,
  HistoryDocument,
  historyId,
  INTENTS_COLLECTION,
} from './documents';
import type { ProcessRegistry } from './processes';
import { withEngineRetry } from './engine-errors';

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

/**
 * A document of an internal collection (a work queue, an outbox) written by the same commit as its
 * resources: it is there if and only if the commit happened. It travels in the intent, so recovery
 * writes it when it finishes a commit; writing it again is harmless, which is why it is keyed by `_id`:
 * - `insert-once`: written only if absent (an outbox event, never reset once its consumer changed it);
 * - `upsert`: `fields` set whether or not it exists (a queue entry whose `fields` tell its consumer
 *   that something arrived after it had started, see src/store/work-queue.ts).
 */
export interface SideDocument {
  collection: string;
  _id: string;
  mode: 'insert-once' | 'upsert';
  fields: Record<string, unknown>;
}

/** A commit in flight: what recovery needs to finish it (its versions are in history) or discard it. */
export interface IntentDocument {
  _id: string;
  owner: { server: string; incarnation: string };
  startedAt: Date;
  types: string[];
  writes: { type: string; id: string; v: number; claims?: string[] }[];
  sides?: SideDocument[];
}

/** Inserted once per commit; `settled` is far in the future until every current document is in place. */
export interface DecisionDocument {
  _id: string;
  state: 'committed' | 'aborted';
  types: string[];
  decidedAt: Date;
  settled: Date;
}

/** `settled` of a decision whose current documents are still being written. */
export const NOT_SETTLED = new Date('9999-12-31T00:00:00Z');

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

/**
 * Thrown when recovery decided this commit aborted before its owner could decide it committed: the
 * owner's process was taken for dead (its heartbeat had lapsed). Nothing of the commit is kept.
 */
export class CommitAbortedError extends Error {
  constructor(readonly tx: string) {
    super(`commit ${tx} was aborted by recovery before it could complete`);
  }
}

/** The index of the document an ordered insertMany stopped at on a duplicate key, if that is why it failed. */
function duplicateKeyIndex(error: unknown): number | undefined {
  const errors = error instanceof MongoBulkWriteError ? error.writeErrors : undefined;
  const first = Array.isArray(errors) ? errors[0] : errors;
  return first?.code === 11000 ? first.index : undefined;
}

/**
 * The indexes of the documents an unordered insertMany did not store because their _id was taken, when
 * that is the only reason it failed; undefined when anything else failed.
 */
export function duplicateKeyFailures(error: unknown): number[] | undefined {
  const failures = error instanceof MongoBulkWriteError ? [error.writeErrors].flat() : [];
  if (!failures.length || failures.some((f) => f.code !== 11000)) return undefined;
  return failures.map((f) => f.index);
}

function isDuplicateKey(error: unknown): boolean {
  return (error as { code?: unknown }).code === 11000 || duplicateKeyIndex(error) !== undefined;
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return groups;
}

function byType(writes: StagedWrite[]): Map<string, StagedWrite[]> {
  return groupBy(writes, (write) => write.type);
}

/** How a recovering process rebuilds a current document from a history version (search values included). */
export type CurrentFromHistory = (version: HistoryDocument, previous: CurrentDocument | null) => CurrentDocument;

export interface JournalOptions {
  processes: ProcessRegistry;
  rebuild: CurrentFromHistory;
  /** A client on a deployment with multi-document transactions: current documents are then replaced in one. */
  transactions?: MongoClient;
  /** How long decisions are kept after they settle, for readers still comparing against them. */
  retentionMs?: number;
  /** Groups of commits run at once; commits arriving meanwhile wait and go together (default 2). */
  maxGroups?: number;
  /** Most writes a group gathers from waiting commits (default 500). */
  maxGroupWrites?: number;
}

/** A commit waiting for its group. */
interface WaitingCommit {
  writes: StagedWrite[];
  sides: SideDocument[];
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * How far a commit got: `discarded` once its clean-up removed everything it wrote before its decision;
 * `decided` once its decision may have been written (then it is never tried again).
 */
interface CommitProgress {
  decided: boolean;
  discarded: boolean;
}

/**
 * Commits a set of writes all-or-nothing on any MongoDB-compatible engine, with one single-document
 * write deciding it (README, "Storage and atomicity"):
 *  1. the intent (`_tx`) names the commit, its owner process and its writes;
 *  2. conditional-create claims and the new history versions are inserted; each version's unique _id
 *     ("Type/id/v") is the version lock, so of two writers of one version exactly one gets it. These
 *     versions carry the commit id and stay invisible until the decision;
 *  3. the decision (`_commits`) is inserted: `committed`. Recovery may race to insert `aborted` for a
 *     commit whose process it took for dead; the unique _id lets exactly one of them win, so a commit
 *     that was answered 2xx can never be undone;
 *  4. the current documents are replaced (each guarded by the version it replaces); readers that meet a
 *     decided commit whose documents are not all in place wait for it (src/store/read-view.ts);
 *  5. the decision is marked settled and the intent removed; then the write is acknowledged.
 * Recovery finishes a decided commit from its history versions, and discards an undecided one by
 * deciding it aborted and removing its versions and claims. Current documents only ever change after a
 * decision, so discarding never has to restore anything.
 */
export class Journal {
  /** Test hook: called after the n-th current document is replaced, to inject a crash mid-commit. */
  afterWriteHook?: (applied: number) => Promise<void> | void;
  /** Test hook: called when the versions are locked and the decision is about to be written. */
  beforeDecisionHook?: () => Promise<void> | void;

  /** Each commit() not yet answered (settling either way), for drain(). */
  private readonly unanswered = new Set<Promise<void>>();
  /** The ids of the commits this process is running now: recovery never touches them. */
  private readonly inFlight = new Set<string>();
  private readonly waiting: WaitingCommit[] = [];
  private running = 0;
  /** Groups of commits this process runs at once (JournalOptions.maxGroups). */
  private readonly maxGroups: number;
  /** Writes beyond which commits waiting are not added to a group (one larger commit goes alone). */
  private readonly maxGroupWrites: number;
  private readonly processes: ProcessRegistry;
  private readonly rebuild: CurrentFromHistory;
  private readonly transactions?: MongoClient;
  readonly retentionMs: number;

  constructor(
    private readonly db: Db,
    options: JournalOptions,
  ) {
    this.processes = options.processes;
    this.rebuild = options.rebuild;
    this.transactions = options.transactions;
    this.retentionMs = options.retentionMs ?? 60_000;
    this.maxGroups = options.maxGroups ?? 2;
    this.maxGroupWrites = options.maxGroupWrites ?? 500;
  }

  private get intents() {
    return this.db.collection<IntentDocument>(INTENTS_COLLECTION);
  }

  private get decisions() {
    return this.db.collection<DecisionDocument>(DECISIONS_COLLECTION);
  }

  private get history() {
    return this.db.collection<HistoryDocument>(HISTORY_COLLECTION);
  }

  /**
   * Commits `writes` and `sides` all-or-nothing. Commits that arrive while `maxGroups` others are
   * running wait, and go together as one (group commit): the engine takes one write per step for all
   * of them instead of one each, and it serializes writes anyway. A group that fails before its
   * decision leaves nothing (its clean-up discards it), and each of its commits is then tried alone,
   * so that a conflict reaches only the commit that has it, with its own write's index.
   */
  commit(writes: StagedWrite[], sides: SideDocument[] = []): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.waiting.push({ writes, sides, resolve, reject });
    });
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.unanswered.add(settled);
    void settled.then(() => this.unanswered.delete(settled));
    this.startGroups();
    return done;
  }

  /** Resolves once every commit that this process had in flight when called has finished. */
  async drain(): Promise<void> {
    await Promise.all([...this.unanswered.values()]);
  }

  private startGroups(): void {
    while (this.running < this.maxGroups && this.waiting.length) {
      const group: WaitingCommit[] = [];
      let size = 0;
      while (this.waiting.length && (!group.length || size + this.waiting[0].writes.length <= this.maxGroupWrites)) {
        const next = this.waiting.shift() as WaitingCommit;
        group.push(next);
        size += next.writes.length;
      }
      this.running++;
      void this.commitGroup(group).finally(() => {
        this.running--;
        this.startGroups();
      });
    }
  }

  private async commitGroup(group: WaitingCommit[]): Promise<void> {
    const progress = { decided: false, discarded: false };
    try {
      await this.commitAs(
        group.flatMap((c) => c.writes),
        group.flatMap((c) => c.sides),
        progress,
      );
      for (const c of group) c.resolve();
      return;
    } catch (error) {
      // Alone, or possibly committed (its decision was written or may have been): its error is each one's.
      if (group.length === 1 || progress.decided || !progress.discarded) {
        for (const c of group) c.reject(error);
        return;
      }
    }
    await Promise.all(
      group.map(async (c) => {
        try {
          await this.commitAs(c.writes, c.sides, { decided: false, discarded: false });
          c.resolve();
        } catch (error) {
          c.reject(error);
        }
      }),
    );
  }

  private async commitAs(writes: StagedWrite[], sides: SideDocument[], progress: CommitProgress): Promise<void> {
    const tx = randomUUID();
    this.inFlight.add(tx);
    try {
      await this.run(tx, writes, sides, progress);
    } finally {
      this.inFlight.delete(tx);
    }
  }

  private async run(tx: string, writes: StagedWrite[], sides: SideDocument[], progress: CommitProgress): Promise<void> {
    const types = [...new Set(writes.map((w) => w.type))];
    await this.intents.insertOne({
      _id: tx,
      owner: { server: this.processes.serverId, incarnation: this.processes.incarnation },
      startedAt: new Date(),
      types,
      writes: writes.map((w) => ({ type: w.type, id: w.id, v: w.next.v, ...(w.claims ? { claims: w.claims } : {}) })),
      ...(sides.length ? { sides } : {}),
    });
    try {
      await this.claim(writes, tx);
      // Both before the decision, so they may overlap; both must have finished before a clean-up, or a
      // version landing after it would hold its slot for good.
      const [locked, verified] = await Promise.allSettled([this.lockVersions(writes, tx), this.verifyPrevious(writes)]);
      if (locked.status === 'rejected') throw locked.reason;
      if (verified.status === 'rejected') throw verified.reason;
      await this.beforeDecisionHook?.();
    } catch (error) {
      // Nothing is visible yet; a failed clean-up leaves the intent for recovery.
      progress.discarded = await this.discarded(tx);
      throw error;
    }
    await this.decide(tx, types, progress);
    // Decided: from here on the commit happens, whoever finishes it.
    await withEngineRetry(() => this.applyStaged(writes, sides));
    await this.settle(tx);
  }

  private async claim(writes: StagedWrite[], tx: string): Promise<void> {
    const claims = writes.flatMap((w, index) =>
      (w.claims ?? []).map((key) => ({ doc: { _id: key, type: w.type, id: w.id, tx } as ClaimDocument, index })),
    );
    if (!claims.length) return;
    try {
      await this.db.collection<ClaimDocument>(CLAIMS_COLLECTION).insertMany(
        claims.map((c) => c.doc),
        { ordered: true },
      );
    } catch (error) {
      const first = duplicateKeyIndex(error);
      if (first !== undefined) throw new ClaimTakenError(claims[first].doc._id, claims[first].index);
      throw error;
    }
  }

  private async lockVersions(writes: StagedWrite[], tx: string): Promise<void> {
    const versions = writes.map((w): HistoryDocument => {
      const version: HistoryDocument = {
        _id: historyId(w.type, w.id, w.next.v),
        type: w.type,
        id: w.id,
        v: w.next.v,
        ts: w.next.ts,
        method: w.method,
        tx,
      };
      // Which patients' compartments the version is in: history reads are filtered by access as searches are.
      if (w.next.compartments) version.compartments = w.next.compartments;
      if (w.next.deleted) version.deleted = true;
      else {
        version.resource = w.next.resource;
        if (w.next.nt) version.nt = w.next.nt;
      }
      return version;
    });
    try {
      await this.history.insertMany(versions, { ordered: true });
    } catch (error) {
      const first = duplicateKeyIndex(error);
      if (first !== undefined) throw new VersionConflictError(writes[first].type, writes[first].id, first);
      throw error;
    }
  }

  /**
   * The version locks hold only if each write's `previous` is what is current: a stale one already
   * lost at the lock, but check that none names a version past the current one either.
   */
  private async verifyPrevious(writes: StagedWrite[]): Promise<void> {
    // A create's lock is version 1 itself, which only a first write can take: history versions are
    // never removed but for those of aborted commits, so there is nothing more to check for it.
    for (const [type, group] of byType(writes.filter((w) => w.previous !== null))) {
      const current = await this.db
        .collection<CurrentDocument>(type)
        .find({ _id: { $in: group.map((w) => w.id) } }, { projection: { v: 1 } })
        .toArray();
      const versions = new Map(current.map((d) => [d._id, d.v]));
      for (const w of group) {
        if ((versions.get(w.id) ?? null) !== (w.previous?.v ?? null)) {
          throw new VersionConflictError(w.type, w.id, writes.indexOf(w));
        }
      }
    }
  }

  /** The one write that makes the commit happen; loses only to recovery having aborted it first. */
  private async decide(tx: string, types: string[], progress: CommitProgress): Promise<void> {
    // Taken as decided until the decision is known not to be: a group is then never tried again.
    progress.decided = true;
    try {
      await this.decisions.insertOne({
        _id: tx,
        state: 'committed',
        types,
        decidedAt: new Date(),
        settled: NOT_SETTLED,
      });
    } catch (error) {
      if (!isDuplicateKey(error)) {
        // Unknown whether the insert landed (a lost connection): read it back before answering.
        const decision = await withEngineRetry(() => this.decisions.findOne({ _id: tx }));
        if (decision?.state === 'committed') return;
        if (!decision) await this.discard(tx).catch(() => undefined);
        throw error;
      }
      const decision = await this.decisions.findOne({ _id: tx });
      if (decision?.state === 'committed') return;
      // Aborted by recovery: nothing of it is kept, and it may be tried again.
      progress.decided = false;
      progress.discarded = await this.discarded(tx);
      throw new CommitAbortedError(tx);
    }
  }

  /** Puts the staged current documents in place: creates in one insert per type, updates one by one. */
  private async applyStaged(writes: StagedWrite[], sides: SideDocument[]): Promise<void> {
    const apply = async (session?: ClientSession) => {
      let applied = 0;
      for (const [type, group] of byType(writes.filter((w) => !w.previous))) {
        await this.insertCurrent(
          type,
          group.map((w) => w.next),
          session,
        );
        applied += group.length;
        await this.afterWriteHook?.(applied);
      }
      for (const write of writes) {
        if (!write.previous) continue;
        await this.replaceCurrent(write.type, write.previous.v, write.next, session);
        applied++;
        await this.afterWriteHook?.(applied);
      }
      await this.writeSides(sides, session);
    };
    if (this.transactions) {
      await this.transactions.withSession((session) => session.withTransaction(() => apply(session)));
    } else {
      await apply();
    }
  }

  private async writeSides(sides: SideDocument[], session?: ClientSession): Promise<void> {
    for (const [collection, group] of groupBy(sides, (side) => side.collection)) {
      await this.db.collection<{ _id: string }>(collection).bulkWrite(
        group.map((side) =>
          side.mode === 'upsert'
            ? { updateOne: { filter: { _id: side._id }, update: { $set: side.fields }, upsert: true } }
            : { updateOne: { filter: { _id: side._id }, update: { $setOnInsert: side.fields }, upsert: true } },
        ),
        { ordered: false, session },
      );
    }
  }

  /** Inserts new current documents; one that is already there (a reader or recovery finished it) is fine. */
  private async insertCurrent(type: string, docs: CurrentDocument[], session?: ClientSession): Promise<void> {
    const collection = this.db.collection<CurrentDocument>(type);
    try {
      await collection.insertMany(docs, { ordered: false, session });
    } catch (error) {
      const taken = duplicateKeyFailures(error);
      if (!taken) throw error;
      for (const index of taken) {
        const doc = docs[index];
        const existing = await collection.findOne({ _id: doc._id }, { session });
        if (!existing || existing.v < doc.v) {
          throw new Error(`${type}/${doc._id}: a current document exists that this commit did not expect`);
        }
      }
    }
  }

  /** Replaces a current document at `fromVersion`; finding it already at or past the new version is fine. */
  private async replaceCurrent(
    type: string,
    fromVersion: number,
    next: CurrentDocument,
    session?: ClientSession,
  ): Promise<void> {
    const collection = this.db.collection<CurrentDocument>(type);
    const result = await collection.replaceOne({ _id: next._id, v: fromVersion }, next, { session });
    if (result.matchedCount === 1) return;
    const existing = await collection.findOne({ _id: next._id }, { session });
    if (!existing || existing.v < next.v) {
      throw new Error(`${type}/${next._id} is at version ${existing?.v ?? 'none'}, expected ${fromVersion}`);
    }
  }

  private async settle(tx: string): Promise<void> {
    await withEngineRetry(() => this.decisions.updateOne({ _id: tx }, { $set: { settled: new Date() } }));
    await withEngineRetry(() => this.intents.deleteOne({ _id: tx }));
  }

  /** Discards an undecided commit; whether everything it wrote is gone (false leaves it to recovery). */
  private discarded(tx: string): Promise<boolean> {
    return this.discard(tx).then(
      () => true,
      () => false,
    );
  }

  /**
   * Decides an undecided commit aborted and removes what it wrote (its versions and claims, then its
   * intent). If the commit was decided committed meanwhile, finishes it instead.
   */
  private async discard(tx: string): Promise<void> {
    try {
      await this.decisions.insertOne({
        _id: tx,
        state: 'aborted',
        types: [],
        decidedAt: new Date(),
        settled: new Date(),
      });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      const decision = await this.decisions.findOne({ _id: tx });
      if (decision?.state === 'committed') {
        await this.finish(tx);
        return;
      }
    }
    const intent = await this.intents.findOne({ _id: tx });
    if (intent) {
      const ids = intent.writes.map((w) => historyId(w.type, w.id, w.v));
      await this.history.deleteMany({ _id: { $in: ids }, tx });
      await this.db.collection<ClaimDocument>(CLAIMS_COLLECTION).deleteMany({ tx });
    }
    await this.intents.deleteOne({ _id: tx });
  }

  /** Puts a committed commit's current documents in place from its history versions, then settles it. */
  async finish(tx: string): Promise<void> {
    const intent = await this.intents.findOne({ _id: tx });
    // No intent: its documents were all put in place; make sure the decision says so too.
    if (!intent) {
      await this.decisions.updateOne({ _id: tx, settled: NOT_SETTLED }, { $set: { settled: new Date() } });
      return;
    }
    for (const write of intent.writes) {
      const version = await this.history.findOne({ _id: historyId(write.type, write.id, write.v) });
      if (!version) throw new Error(`commit ${tx}: version ${write.type}/${write.id}/${write.v} is missing`);
      const collection = this.db.collection<CurrentDocument>(write.type);
      const current = await collection.findOne({ _id: write.id });
      if (current && current.v >= write.v) continue;
      const next = this.rebuild(version, current);
      if (current) await this.replaceCurrent(write.type, current.v, next);
      else await this.insertCurrent(write.type, [next]);
    }
    await this.writeSides(intent.sides ?? []);
    await this.settle(tx);
  }

  /**
   * Finishes or discards the commits whose process is gone: a previous run of this server, a process
   * whose heartbeat lapsed, or a commit of this process that failed to clean up after itself. A commit
   * still running in a live process is never touched, however long it takes.
   */
  async recover(): Promise<number> {
    const intents = await this.intents.find({}, { projection: { writes: 0 } }).toArray();
    let recovered = 0;
    for (const intent of intents) {
      if (this.inFlight.has(intent._id)) continue;
      const ours = intent.owner.incarnation === this.processes.incarnation;
      if (!ours && (await this.processes.isAlive(intent.owner))) continue;
      await this.discard(intent._id);
      recovered++;
    }
    return recovered;
  }

  /** Forgets decisions settled long enough ago that no reader can still be comparing against them. */
  async forgetSettled(): Promise<void> {
    await this.decisions.deleteMany({ settled: { $lt: new Date(Date.now() - this.retentionMs) } });
  }

  /** Commits decided committed (of `type`, if given) whose documents were not all in place at some point since `since`. */
  /** Whether a commit that writes one of `types` settled at or after `since`, or is settling now. */
  async changedSince(since: Date, types: string[]): Promise<boolean> {
    const found = await this.decisions.findOne(
      { state: 'committed', settled: { $gte: since }, types: { $in: types } },
      { projection: { _id: 1 } },
    );
    return found !== null;
  }

  /** The commits writing one of `types` that settled at or after `since` or are settling now: their types and when. */
  async changesSince(since: Date, types: string[]): Promise<Pick<DecisionDocument, 'types' | 'settled'>[]> {
    return this.decisions
      .find(
        { state: 'committed', settled: { $gte: since }, types: { $in: types } },
        { projection: { _id: 0, types: 1, settled: 1 } },
      )
      .toArray();
  }

  async settlingSince(since: Date, type?: string): Promise<DecisionDocument[]> {
    return this.decisions
      .find({ state: 'committed', settled: { $gte: since }, ...(type ? { types: type } : {}) })
      .toArray();
  }

  /**
   * Waits until the given commits have settled. One that does not settle promptly (its process died
   * between deciding and settling, or is stalled) is finished by the caller: finishing is idempotent
   * and every step is guarded by versions, so it is safe even while the owner is still at it. Returns
   * early, with commits still unsettled, once `giveUpAt` (epoch ms) has passed.
   */
  async awaitSettled(txs: string[], patienceMs = 2000, giveUpAt = Infinity): Promise<void> {
    const deadline = Date.now() + patienceMs;
    let pending = txs;
    for (let round = 0; pending.length; round++) {
      // The reader's own time is up (its request's budget): it stops waiting, and the reader answers so.
      if (Date.now() > giveUpAt) return;
      const open = await this.decisions
        .find({ _id: { $in: pending }, settled: NOT_SETTLED }, { projection: { _id: 1 } })
        .toArray();
      pending = open.map((d) => d._id);
      if (!pending.length) return;
      // A commit whose process is gone will not settle by itself: finish it now rather than wait.
      const orphaned = round === 0 ? await this.orphaned(pending) : [];
      if (Date.now() > deadline || orphaned.length) {
        for (const tx of Date.now() > deadline ? pending : orphaned) await this.finish(tx);
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  private async orphaned(txs: string[]): Promise<string[]> {
    const intents = await this.intents.find({ _id: { $in: txs } }, { projection: { owner: 1 } }).toArray();
    const result: string[] = [];
    for (const intent of intents) {
      if (this.inFlight.has(intent._id)) continue;
      if (!(await this.processes.isAlive(intent.owner))) result.push(intent._id);
    }
    return result;
  }

  /**
   * Whether each commit's versions are visible: those of a commit in flight only once it is decided
   * committed, those of a finished one unless it was aborted. The intents are read before the
   * decisions: a commit that finishes in between is then still judged by its decision.
   */
  async visibility(txs: string[]): Promise<Map<string, boolean>> {
    const unique = [...new Set(txs)];
    const result = new Map<string, boolean>();
    if (!unique.length) return result;
    const inFlight = new Set(
      (await this.intents.find({ _id: { $in: unique } }, { projection: { _id: 1 } }).toArray()).map((i) => i._id),
    );
    const decisions = new Map(
      (await this.decisions.find({ _id: { $in: unique } }, { projection: { state: 1 } }).toArray()).map((d) => [
        d._id,
        d.state,
      ]),
    );
    for (const tx of unique) {
      const state = decisions.get(tx);
      result.set(tx, inFlight.has(tx) ? state === 'committed' : state !== 'aborted');
    }
    return result;
  }

  /** Whether a claim's commit is still running (its intent exists). */
  async inFlightCommit(tx: string): Promise<boolean> {
    return (await this.intents.findOne({ _id: tx }, { projection: { _id: 1 } })) !== null;
  }
}
