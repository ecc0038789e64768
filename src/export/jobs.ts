import type { Db } from 'mongodb';
import { type BackgroundJob, type JobState, JobStore } from '../jobs/job-store';
import type { StoredRequester } from '../auth/stored-requester';

export type { JobRunner } from '../jobs/job-store';

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

export type ExportState = JobState;

/** One Bulk Data export, shared by every server on the database (collection `_export_jobs`). */
export interface ExportJob extends BackgroundJob {
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
  transactionTime: Date;
  cursor: ExportCursor | null;
  done: number;
  output: ExportOutputFile[];
  failure?: string;
}

export const EXPORT_JOBS_COLLECTION = '_export_jobs';

export { isOwner } from '../jobs/owner';

/** The export jobs (their lifecycle is every background job's, src/jobs/job-store.ts). */
export class ExportJobs extends JobStore<ExportJob> {
  constructor(db: Db) {
    super(db, EXPORT_JOBS_COLLECTION);
  }
}
