import type { Db } from 'mongodb';
import type { Requester } from '../auth/requester';
import type { StoredRequester } from '../auth/stored-requester';

/** The server process working a job: its SERVER_ID and incarnation (src/store/processes.ts). */
export interface JobRunner {
  server: string;
  incarnation: string;
}

/** Where a job stopped: the type being exported, the last _id written, and the file being filled. */
export interface ExportCursor {
  typeIndex: number;
  after: string | null;
  /** Number of the file being filled (numbers run across types), its next chunk and its resources so far. */
  file: number;
  chunk: number;
  inFile: number;
}

export interface ExportOutputFile {
  type: string;
  file: number;
  count: number;
  chunks: number;
}

export type ExportState = 'accepted' | 'in-progress' | 'completed' | 'failed' | 'cancelled';

/** One Bulk Data export, shared by every server on the database (collection `_export_jobs`). */
export interface ExportJob {
  _id: string;
  requester: StoredRequester;
  /** The kick-off request's URL, for the manifest's `request`. */
  request: string;
  baseUrl: string;
  level: 'system' | 'patient' | 'group';
  /** The types exported, in order. */
  types: string[];
  since?: Date;
  /** `_typeFilter`: per type, search queries (`status=active&...`) of which a resource matches any. */
  typeFilters: { type: string; query: string }[];
  elements?: string[];
  /** Patient-level `patient` and Group-level members: the patient ids the export is limited to. */
  patients?: string[];
  /** Parameters accepted but ignored, reported in the manifest's error file. */
  warnings: string[];
  state: ExportState;
  runner: JobRunner | null;
  transactionTime: Date;
  cursor: ExportCursor | null;
  done: number;
  output: ExportOutputFile[];
  failure?: string;
  createdAt: Date;
  updatedAt: Date;
  polledAt?: Date;
  expiresAt?: Date;
}

export const EXPORT_JOBS_COLLECTION = '_export_jobs';

/** Whether `requester` is the one who started the job: the same subject and client. */
export function isOwner(job: ExportJob, requester: Requester): boolean {
  if (job.requester.unrestricted || requester.unrestricted)
    return job.requester.unrestricted === requester.unrestricted;
  return (
    job.requester.subject !== undefined &&
    job.requester.subject === requester.subject &&
    job.requester.clientId === requester.clientId
  );
}

/**
 * The jobs. Every change a runner makes is a compare-and-set on the job's runner and state, so a
 * runner whose job was cancelled or taken over notices at its next chunk and stops.
 */
export class ExportJobs {
  constructor(private readonly db: Db) {}

  private get collection() {
    return this.db.collection<ExportJob>(EXPORT_JOBS_COLLECTION);
  }

  async create(job: ExportJob): Promise<void> {
    await this.collection.insertOne(job);
  }

  get(id: string): Promise<ExportJob | null> {
    return this.collection.findOne({ _id: id });
  }

  /** Jobs not finished, oldest first: candidates for a runner. */
  unfinished(limit: number): Promise<ExportJob[]> {
    return this.collection
      .find({ state: { $in: ['accepted', 'in-progress'] } }, { sort: { createdAt: 1 }, limit })
      .toArray();
  }

  /** Takes a job from `from` (null: nobody runs it; otherwise a process known to be gone). */
  async claim(id: string, runner: JobRunner, from: JobRunner | null): Promise<ExportJob | null> {
    const result = await this.collection.updateOne(
      {
        _id: id,
        state: { $in: ['accepted', 'in-progress'] },
        ...(from ? { 'runner.incarnation': from.incarnation } : { runner: null }),
      },
      { $set: { runner, state: 'in-progress', updatedAt: new Date() } },
    );
    return result.matchedCount === 1 ? this.get(id) : null;
  }

  /** Records progress (or the end); false when the job is no longer this runner's (cancelled, taken over). */
  async update(
    id: string,
    runner: JobRunner,
    fields: Partial<Pick<ExportJob, 'state' | 'cursor' | 'done' | 'output' | 'failure' | 'expiresAt' | 'runner'>>,
  ): Promise<boolean> {
    const result = await this.collection.updateOne(
      { _id: id, state: 'in-progress', 'runner.incarnation': runner.incarnation },
      { $set: { ...fields, updatedAt: new Date() } },
    );
    return result.matchedCount === 1;
  }

  /** A status request: false when the last one came less than `minMs` ago (the client polls too fast). */
  async recordPoll(id: string, now: Date, minMs: number): Promise<boolean> {
    const result = await this.collection.updateOne(
      { _id: id, $or: [{ polledAt: { $exists: false } }, { polledAt: { $lte: new Date(now.getTime() - minMs) } }] },
      { $set: { polledAt: now } },
    );
    return result.matchedCount === 1;
  }

  /** Cancels (or, once completed, deletes) the export: its files go at once, the job at the next sweep. */
  async cancel(id: string): Promise<boolean> {
    const now = new Date();
    const result = await this.collection.updateOne(
      { _id: id, state: { $ne: 'cancelled' } },
      { $set: { state: 'cancelled', expiresAt: now, updatedAt: now } },
    );
    return result.matchedCount === 1;
  }

  expired(now: Date, limit: number): Promise<ExportJob[]> {
    return this.collection.find({ expiresAt: { $lte: now } }, { limit, projection: { _id: 1 } }).toArray();
  }

  async remove(id: string): Promise<void> {
    await this.collection.deleteOne({ _id: id });
  }
}
