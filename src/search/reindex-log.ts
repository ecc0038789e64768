import type { Db } from 'mongodb';
import type { ReindexCursor } from './reindex';

/** The server process that runs a reindex: its SERVER_ID and the incarnation (one start of it). */
export interface ReindexOwner {
  server: string;
  incarnation: string;
}

/**
 * The reindex of one runtime SearchParameter version, shared by every server on the database: who
 * runs it, how far it got (so that another process resumes a crashed one where it stopped) and the
 * progress `$reindex-status` answers with on any server.
 */
export interface ReindexJob {
  /** The SearchParameter's id: one job per resource, replaced when a new version is stored. */
  _id: string;
  v: number;
  /** "SearchParameter/id/v", the key of the acknowledgements the job waits for. */
  definition: string;
  /** waiting: for every live process to acknowledge the version; scanning: walking the collections. */
  state: 'pending' | 'waiting' | 'scanning' | 'done';
  owner: ReindexOwner | null;
  cursor: ReindexCursor | null;
  done: number;
  total: number;
  updatedAt: Date;
}

export const REINDEX_JOBS_COLLECTION = '_reindex_jobs';

/**
 * The reindex jobs. Every change is a compare-and-set on the job's version and owner, so a process
 * that lost the job (taken over as dead, or a newer version stored) notices at its next batch and stops.
 */
export class ReindexLog {
  constructor(private readonly db: Db) {}

  private get collection() {
    return this.db.collection<ReindexJob>(REINDEX_JOBS_COLLECTION);
  }

  get(id: string): Promise<ReindexJob | null> {
    return this.collection.findOne({ _id: id });
  }

  getMany(ids: string[]): Promise<ReindexJob[]> {
    return this.collection.find({ _id: { $in: ids } }).toArray();
  }

  unfinished(): Promise<ReindexJob[]> {
    return this.collection.find({ state: { $ne: 'done' } }).toArray();
  }

  async isDone(id: string, v: number): Promise<boolean> {
    const job = await this.get(id);
    return job?.v === v && job.state === 'done';
  }

  /** Creates the job of version `v` unless it (or a newer version's) exists; the first process's insert wins. */
  async ensure(id: string, v: number): Promise<void> {
    const fresh: ReindexJob = {
      _id: id,
      v,
      definition: `SearchParameter/${id}/${v}`,
      state: 'pending',
      owner: null,
      cursor: null,
      done: 0,
      total: 0,
      updatedAt: new Date(),
    };
    for (;;) {
      const existing = await this.get(id);
      if (existing && existing.v >= v) return;
      if (!existing) {
        try {
          await this.collection.insertOne(fresh);
          return;
        } catch (error) {
          if ((error as { code?: unknown }).code !== 11000) throw error;
          continue; // another process inserted it meanwhile: compare versions again
        }
      }
      const replaced = await this.collection.replaceOne({ _id: id, v: existing.v }, fresh);
      if (replaced.matchedCount === 1) return;
    }
  }

  /**
   * Takes the unfinished job of version `v` from `from` (null: nobody runs it yet; otherwise a process
   * known to be dead). Answers the job as taken, or null when another process got it first.
   */
  async claim(id: string, v: number, owner: ReindexOwner, from: ReindexOwner | null): Promise<ReindexJob | null> {
    const filter = {
      _id: id,
      v,
      state: { $ne: 'done' as const },
      ...(from ? { 'owner.incarnation': from.incarnation } : { owner: null }),
    };
    const result = await this.collection.updateOne(filter, { $set: { owner, updatedAt: new Date() } });
    return result.matchedCount === 1 ? this.get(id) : null;
  }

  /** Records progress (or hands the job back with owner null); false when the job is no longer this owner's (superseded or taken over). */
  async update(
    id: string,
    v: number,
    owner: ReindexOwner,
    fields: Partial<Pick<ReindexJob, 'state' | 'owner' | 'cursor' | 'done' | 'total'>>,
  ): Promise<boolean> {
    const result = await this.collection.updateOne(
      { _id: id, v, 'owner.incarnation': owner.incarnation },
      { $set: { ...fields, updatedAt: new Date() } },
    );
    return result.matchedCount === 1;
  }

  /** The SearchParameter was deleted: its job goes too (a runner notices at its next batch). */
  async remove(id: string, v: number): Promise<void> {
    await this.collection.deleteOne({ _id: id, v: { $lt: v } });
  }
}
