import type { Db } from 'mongodb';
import type { MeasureReport } from '@medplum/fhirtypes';
import type { StoredRequester } from '../auth/stored-requester';
import { type BackgroundJob, JobStore } from '../jobs/job-store';
import type { ReportRequest } from './report';
import type { Checkpoint } from './population';

/** One asynchronous $evaluate-measure (collection `_measure_jobs`), resumable from its checkpoint. */
export interface MeasureJob extends BackgroundJob {
  requester: StoredRequester;
  /** The Measure evaluated: its id and the version read at the kick-off, so a resumed job evaluates the same one. */
  measureId: string;
  measureVersion?: string;
  request: ReportRequest;
  /** The patients of a Patient or Group subject, fixed at the kick-off. */
  patients?: string[];
  /** Patients the requester may see, counted at the kick-off: the denominator of X-Progress. */
  total: number;
  checkpoint: Checkpoint | null;
  report?: MeasureReport;
  failure?: string;
  /** The status a failed job answers: 422 for a Measure that cannot be evaluated, 409 when it changed, else 500. */
  failureStatus?: number;
}

export const MEASURE_JOBS_COLLECTION = '_measure_jobs';

export class MeasureJobs extends JobStore<MeasureJob> {
  constructor(db: Db) {
    super(db, MEASURE_JOBS_COLLECTION);
  }
}
