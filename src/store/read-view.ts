import type { Db, Document, Filter, FindOptions } from 'mongodb';
import { restoreNumberTexts, type NumberTextEntry } from '../fhir/number-text';
import { historyId, HISTORY_COLLECTION, type HistoryDocument } from './documents';
import { filterMatcher } from './filter-match';
import type { DecisionDocument, Journal } from './journal';

/** The reads that search, includes, reviews and conditional matches make of current documents. */
export interface Reader {
  /** For what is not a read of resources (listCollections, feature probes). */
  readonly db: Db;
  find<T extends Document>(collection: string, filter: Filter<T>, options?: FindOptions): Promise<T[]>;
  findOne<T extends Document>(collection: string, filter: Filter<T>, options?: FindOptions): Promise<T | null>;
  count<T extends Document>(collection: string, filter: Filter<T>): Promise<number>;
  /** The collection's size from its metadata: an estimate, so not held to a commit boundary. */
  estimatedCount(collection: string): Promise<number>;
  /**
   * Every matching document through one cursor, `batchSize` at a time, in the engine's order: for
   * answers that stream (views), which hold one batch in memory whatever the collection's size. No
   * order is asked, so one cursor serves (idPages reads in `_id` order). A stream spans commits: it is
   * not held to one commit boundary.
   */
  batches<T extends Document>(
    collection: string,
    filter: Filter<T>,
    batchSize: number,
    projection?: Document,
  ): AsyncGenerator<T[]>;
}

async function* cursorBatches<T extends Document>(
  db: Db,
  collection: string,
  filter: Filter<T>,
  batchSize: number,
  projection?: Document,
) {
  const cursor = db.collection<T>(collection).find(filter, { batchSize, ...(projection ? { projection } : {}) });
  try {
    let batch: T[] = [];
    for await (const doc of cursor) {
      batch.push(withNumberTexts(doc as T));
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
  } finally {
    await cursor.close();
  }
}

/**
 * The matching documents in `_id` order, in pages of `batchSize`, each a query for the next page after
 * the last `_id` seen (after `after`, when given). Each query is bounded, where one cursor sorted by
 * `_id` makes the engine sort every match first (FerretDB does; our patch walks the `_id` index for a
 * limited find, tools/ferretdb/patch/idorder_medsfhir.go), and no read stays open between pages.
 */
export async function* idPages<T extends Document & { _id: string }>(
  db: Db,
  collection: string,
  filter: Filter<T>,
  options: { batchSize: number; projection?: Document; after?: string },
): AsyncGenerator<T[]> {
  const { batchSize, projection } = options;
  let after = options.after;
  for (;;) {
    const page = after === undefined ? filter : ({ $and: [filter, { _id: { $gt: after } }] } as Filter<T>);
    const docs = (await db
      .collection<T>(collection)
      .find(page, { sort: { _id: 1 }, limit: batchSize, batchSize, ...(projection ? { projection } : {}) })
      .toArray()) as T[];
    if (docs.length) yield docs;
    if (docs.length < batchSize) return;
    after = docs[docs.length - 1]._id;
  }
}

/** Puts the written number texts a current document keeps beside its resource back on the resource. */
function withNumberTexts<T>(doc: T): T {
  const { nt, resource } = (doc ?? {}) as { nt?: NumberTextEntry[]; resource?: unknown };
  if (nt) restoreNumberTexts(resource, nt);
  return doc;
}

/** A read of current documents straight from the database: for start-up and background work. */
export function directReader(db: Db): Reader {
  return {
    db,
    find: async <T extends Document>(collection: string, filter: Filter<T>, options?: FindOptions) =>
      ((await db.collection<T>(collection).find(filter, options).toArray()) as T[]).map(withNumberTexts),
    findOne: async <T extends Document>(collection: string, filter: Filter<T>, options?: FindOptions) =>
      withNumberTexts((await db.collection<T>(collection).findOne(filter, options)) as T | null),
    count: <T extends Document>(collection: string, filter: Filter<T>) =>
      db.collection<T>(collection).countDocuments(filter),
    estimatedCount: (collection) => db.collection(collection).estimatedDocumentCount(),
    batches: <T extends Document>(collection: string, filter: Filter<T>, batchSize: number, projection?: Document) =>
      cursorBatches(db, collection, filter, batchSize, projection),
  };
}

/**
 * The reads of one request could not be made to agree on one commit boundary (commits kept landing
 * between them): the request is run again, and after a few tries answered 503.
 */
export class ReadConflictError extends Error {
  constructor(reason: string) {
    super(`reads could not be aligned on a commit boundary: ${reason}`);
  }
}

/**
 * The request ran out of its time budget (REQUEST_TIME_BUDGET_MS) before its reads were done: it is
 * answered 503 at once rather than late.
 */
export class TimeBudgetError extends Error {
  constructor() {
    super('the request ran out of its time budget');
  }
}

/** The top-level fields a filter looks at (through `$and`, `$or` and `$nor`). */
function filterFields(filter: Document, into = new Set<string>()): Set<string> {
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' || key === '$or' || key === '$nor') {
      for (const part of value as Document[]) filterFields(part, into);
    } else into.add(key.split('.')[0]);
  }
  return into;
}

/** Whether documents read with `projection` (none: whole) still hold every field `filter` looks at. */
function keepsFields(projection: Document | undefined, filter: Document): boolean {
  if (!projection) return true;
  return [...filterFields(filter)].every((field) =>
    // `_id` comes back unless the projection leaves it out.
    field === '_id'
      ? projection._id !== 0 && projection._id !== false
      : projection[field] === 1 || projection[field] === true,
  );
}

/** A restriction's answer for a collection the requester may not read at all. */
export const NONE = Symbol('no documents');

/** The access filter of a collection: undefined when every document may be read, NONE when none may. */
export type Restriction = (collection: string) => Document | typeof NONE | undefined;

/** How often one read is re-run after waiting for commits that landed under it. */
const MAX_ROUNDS = 6;

/**
 * The reads of one request, each made consistent with the commit protocol (src/store/journal.ts).
 *
 * Current documents change only after a commit is decided, one document at a time. A read that ran
 * while a decided commit was putting its documents in place may have seen some of them and not the
 * others, so after each read the view asks which commits of that collection were not settled at some
 * point since the request began (their decisions carry `settled`, far in the future until all their
 * documents are in place). If one may have moved under the read, the view waits for it to settle (or
 * finishes it, see Journal.awaitSettled) and reads again. A read by _id only waits for a commit that
 * writes that very resource.
 *
 * Several reads of one request (a page and its total, includes, a review's compartment) must also agree
 * with each other: each records the unsettled commits it saw, and `validate` checks that every commit
 * that landed during the request was seen by all of the reads it concerns or by none.
 */
export class ReadView implements Reader {
  private readonly from: Date;
  private readonly reads: { collection: string; seen: Set<string> }[] = [];

  constructor(
    readonly db: Db,
    private readonly journal: Journal,
    private readonly skewMs: number,
    /** The requester's access filter per collection, ANDed to every read (src/auth/access-policy.ts). */
    private readonly restriction?: Restriction,
    /** When the request's time budget ends (epoch ms): no read starts after it, none runs past it. */
    private readonly deadline?: number,
    /** Told of each engine query that was still running when the budget ended (it is left to finish). */
    private readonly abandoned?: (query: Promise<unknown>) => void,
  ) {
    this.from = new Date(Date.now() - skewMs);
  }

  async find<T extends Document>(collection: string, filter: Filter<T>, options?: FindOptions): Promise<T[]> {
    const restricted = this.restrict(collection, filter);
    if (restricted === NONE) return [];
    return this.consistent(collection, async () =>
      ((await this.db.collection<T>(collection).find(restricted, options).toArray()) as T[]).map(withNumberTexts),
    );
  }

  async findOne<T extends Document>(collection: string, filter: Filter<T>, options?: FindOptions): Promise<T | null> {
    // The access filter is built once: a practitioner's lists thousands of compartments.
    const restriction = this.restriction?.(collection);
    const restricted = this.restrict(collection, filter, restriction);
    if (restricted === NONE) return null;
    const id = (filter as { _id?: unknown })._id;
    // A read of one resource by id is tested against the access filter here rather than sent with it:
    // a practitioner's filter names the compartments of thousands of patients, which the engine would
    // decode and index on every read of one document. Only when the projection keeps every field the
    // filter looks at.
    const testedHere =
      typeof id === 'string' &&
      Object.keys(filter).length === 1 &&
      restriction !== undefined &&
      restriction !== NONE &&
      keepsFields(options?.projection, restriction);
    const run = testedHere
      ? async () => {
          const doc = await this.db.collection<T>(collection).findOne(filter, options);
          return doc && filterMatcher(restriction)(doc) ? withNumberTexts(doc as T) : null;
        }
      : async () => withNumberTexts((await this.db.collection<T>(collection).findOne(restricted, options)) as T | null);
    if (typeof id !== 'string') return this.consistent(collection, run);
    return this.consistent(collection, run, async (doc, candidates) => {
      // A commit concerns this read only if it writes the version after the one read.
      const version = typeof doc?.v === 'number' ? doc.v : 0;
      const next = await this.db
        .collection<HistoryDocument>(HISTORY_COLLECTION)
        .findOne({ _id: historyId(collection, id, version + 1) }, { projection: { tx: 1 } });
      return candidates.filter((d) => d._id === next?.tx);
    });
  }

  async count<T extends Document>(collection: string, filter: Filter<T>): Promise<number> {
    const restricted = this.restrict(collection, filter);
    if (restricted === NONE) return 0;
    return this.consistent(collection, () => this.db.collection<T>(collection).countDocuments(restricted));
  }

  /**
   * Every matching document, read from one database cursor in batches (an export, whose reads run
   * for minutes): the same restriction as every other read, but not held to a commit boundary, since
   * no single boundary can be kept that long. A commit landing meanwhile is seen in part or not at all.
   */
  async *stream<T extends Document>(
    collection: string,
    filter: Filter<T>,
    options: FindOptions & { batchSize: number },
  ): AsyncGenerator<T> {
    const restricted = this.restrict(collection, filter);
    if (restricted === NONE) return;
    const cursor = this.db.collection<T>(collection).find(restricted, options);
    try {
      for await (const doc of cursor) yield withNumberTexts(doc as T);
    } finally {
      await cursor.close();
    }
  }

  /**
   * Every matching document in `_id` order, as `stream` is (restricted, not held to a commit
   * boundary), read in keyset pages (idPages).
   */
  async *streamById<T extends Document & { _id: string }>(
    collection: string,
    filter: Filter<T>,
    options: { batchSize: number; projection?: Document },
  ): AsyncGenerator<T> {
    const restricted = this.restrict(collection, filter);
    if (restricted === NONE) return;
    for await (const page of idPages(this.db, collection, restricted, options)) {
      for (const doc of page) yield withNumberTexts(doc);
    }
  }

  async estimatedCount(collection: string): Promise<number> {
    // The collection's size would count what the requester may not see: a restricted view counts.
    if (this.restriction?.(collection) !== undefined) return this.count(collection, { deleted: { $ne: true } });
    return this.db.collection(collection).estimatedDocumentCount();
  }

  async *batches<T extends Document>(
    collection: string,
    filter: Filter<T>,
    batchSize: number,
    projection?: Document,
  ): AsyncGenerator<T[]> {
    const restricted = this.restrict(collection, filter);
    if (restricted === NONE) return;
    yield* cursorBatches(this.db, collection, restricted, batchSize, projection);
  }

  private restrict<T extends Document>(
    collection: string,
    filter: Filter<T>,
    restriction = this.restriction?.(collection),
  ): Filter<T> | typeof NONE {
    if (restriction === undefined) return filter;
    if (restriction === NONE) return NONE;
    return { $and: [filter, restriction] } as Filter<T>;
  }

  private async consistent<R>(
    collection: string,
    run: () => Promise<R>,
    concerning?: (result: R, candidates: DecisionDocument[]) => Promise<DecisionDocument[]>,
  ): Promise<R> {
    const seen = new Set<string>();
    // Commits this read waited for: settled before its next run began, so that run saw all of them.
    const waited = new Set<string>();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const runStart = Date.now();
      const result = await this.withinBudget(run);
      const unsettled = await this.journal.settlingSince(this.from, collection);
      for (const d of unsettled) seen.add(d._id);
      // Settled before this run began (allowing for clock skew between servers): the run saw all of it.
      let moving = unsettled.filter((d) => !waited.has(d._id) && d.settled.getTime() >= runStart - this.skewMs);
      if (moving.length && concerning) moving = await concerning(result, moving);
      if (!moving.length) {
        this.reads.push({ collection, seen });
        return result;
      }
      await this.journal.awaitSettled(
        moving.map((d) => d._id),
        undefined,
        this.deadline,
      );
      for (const d of moving) waited.add(d._id);
    }
    throw new ReadConflictError(`commits kept landing in ${collection}`);
  }

  /**
   * Runs one read within what is left of the budget: none left, or the read still running when it
   * ends, is TimeBudgetError. The engine query itself is left to finish and its answer dropped:
   * stopping it with maxTimeMS cancels SQLite statements in the embedded engine, which then answered
   * concurrent writes "database is locked" (342 of them in one hostile-input run, none without).
   */
  private async withinBudget<R>(run: () => Promise<R>): Promise<R> {
    if (this.deadline === undefined) return run();
    const left = this.deadline - Date.now();
    if (left <= 0) throw new TimeBudgetError();
    const running = run();
    let timer: NodeJS.Timeout | undefined;
    let late = false;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        reject(new TimeBudgetError());
      }, left);
    });
    try {
      return await Promise.race([running, expired]);
    } finally {
      clearTimeout(timer);
      // An answer (or failure) that comes after the budget is no one's any more.
      const dropped = running.catch(() => undefined);
      if (late) this.abandoned?.(dropped);
    }
  }

  /**
   * Checks that the reads made so far agree: no commit seen unsettled by one read and not by another
   * read of a collection it writes. Throws ReadConflictError when they do not (the caller runs again).
   */
  async validate(): Promise<void> {
    if (Date.now() - this.from.getTime() > this.journal.retentionMs / 2) {
      throw new ReadConflictError('the request took longer than commit decisions are kept');
    }
    if (this.reads.length < 2) return;
    for (const decision of await this.journal.settlingSince(this.from)) {
      const concerned = this.reads.filter((r) => decision.types.includes(r.collection));
      const saw = concerned.map((r) => r.seen.has(decision._id));
      if (saw.some(Boolean) && !saw.every(Boolean)) {
        throw new ReadConflictError(
          `a commit landed between the reads of ${concerned.map((r) => r.collection).join(', ')}`,
        );
      }
    }
  }
}
