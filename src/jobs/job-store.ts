import type { Db, Filter, MatchKeysAndValues, OptionalUnlessRequiredId } from 'mongodb';

/** The server process working a job: its SERVER_ID and incarnation (src/store/processes.ts). */
export interface JobRunner {
  server: string;
  incarnation: string;
}

export type JobState = 'accepted' | 'in-progress' | 'completed' | 'failed' | 'cancelled';

/** What every background job (an export, an asynchronous measure evaluation) records about itself. */
export interface BackgroundJob {
  _id: string;
  state: JobState;
  runner: JobRunner | null;
  createdAt: Date;
  updatedAt: Date;
  polledAt?: Date;
  expiresAt?: Date;
}

/**
 * Jobs in one collection, shared by every server on the database. Every change a runner makes is a
 * compare-and-set on the job's runner and state, so a runner whose job was cancelled or taken over
 * notices at its next step and stops.
 */
export class JobStore<T extends BackgroundJob> {
  constructor(
    protected readonly db: Db,
    readonly collectionName: string,
  ) {}

  protected get collection() {
    return this.db.collection<T>(this.collectionName);
  }

  private byId(id: string): Filter<T> {
    return { _id: id } as Filter<T>;
  }

  async create(job: T): Promise<void> {
    await this.collection.insertOne(job as OptionalUnlessRequiredId<T>);
  }

  async get(id: string): Promise<T | null> {
    return (await this.collection.findOne(this.byId(id))) as T | null;
  }

  /** Jobs not finished, oldest first: candidates for a runner. */
  async unfinished(limit: number): Promise<T[]> {
    return (await this.collection
      .find({ state: { $in: ['accepted', 'in-progress'] } } as Filter<T>, { sort: { createdAt: 1 }, limit })
      .toArray()) as T[];
  }

  /** Takes a job from `from` (null: nobody runs it; otherwise a process known to be gone). */
  async claim(id: string, runner: JobRunner, from: JobRunner | null): Promise<T | null> {
    const result = await this.collection.updateOne(
      {
        _id: id,
        state: { $in: ['accepted', 'in-progress'] },
        ...(from ? { 'runner.incarnation': from.incarnation } : { runner: null }),
      } as Filter<T>,
      { $set: { runner, state: 'in-progress', updatedAt: new Date() } as MatchKeysAndValues<T> },
    );
    return result.matchedCount === 1 ? this.get(id) : null;
  }

  /** Records progress (or the end); false when the job is no longer this runner's (cancelled, taken over). */
  async update(id: string, runner: JobRunner, fields: Partial<T>): Promise<boolean> {
    const result = await this.collection.updateOne(
      { _id: id, state: 'in-progress', 'runner.incarnation': runner.incarnation } as unknown as Filter<T>,
      { $set: { ...fields, updatedAt: new Date() } as MatchKeysAndValues<T> },
    );
    return result.matchedCount === 1;
  }

  /** A status request: false when the last one came less than `minMs` ago (the client polls too fast). */
  async recordPoll(id: string, now: Date, minMs: number): Promise<boolean> {
    const result = await this.collection.updateOne(
      {
        _id: id,
        $or: [{ polledAt: { $exists: false } }, { polledAt: { $lte: new Date(now.getTime() - minMs) } }],
      } as Filter<T>,
      { $set: { polledAt: now } as MatchKeysAndValues<T> },
    );
    return result.matchedCount === 1;
  }

  /** Cancels (or, once completed, deletes) the job: it goes at the next sweep. */
  async cancel(id: string): Promise<boolean> {
    const now = new Date();
    const result = await this.collection.updateOne({ _id: id, state: { $ne: 'cancelled' } } as Filter<T>, {
      $set: { state: 'cancelled', expiresAt: now, updatedAt: now } as MatchKeysAndValues<T>,
    });
    return result.matchedCount === 1;
  }

  async expired(now: Date, limit: number): Promise<T[]> {
    return (await this.collection
      .find({ expiresAt: { $lte: now } } as Filter<T>, { limit, projection: { _id: 1 } })
      .toArray()) as T[];
  }

  async remove(id: string): Promise<void> {
    await this.collection.deleteOne(this.byId(id));
  }
}
