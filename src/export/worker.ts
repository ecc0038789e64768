import { FhirError } from '../fhir/outcome';
import { JobWorker, type JobWorkerOptions } from '../jobs/job-worker';
import type { ServerContext } from '../rest/context';
import type { ExportFiles } from './files';
import type { ExportJob, ExportJobs } from './jobs';
import { runExport } from './runner';

export type ExportWorkerOptions = JobWorkerOptions;

/**
 * Runs export jobs in the background (src/jobs/job-worker.ts: one at a time per process, claimed by
 * compare-and-set, resumed elsewhere from the last recorded chunk when their process died), and deletes
 * the files of exports that failed, were cancelled or whose retention ran out.
 */
export class ExportWorker extends JobWorker<ExportJob> {
  /** Called after every chunk a job records (tests stop the server there). */
  afterChunk?: (job: ExportJob) => void | Promise<void>;

  constructor(context: ServerContext, jobs: ExportJobs, files: ExportFiles, options: ExportWorkerOptions = {}) {
    const retention = () => new Date(Date.now() + context.config.exportRetentionSeconds * 1000);
    super(
      context.store,
      context.logger,
      jobs,
      {
        name: 'export',
        run: (job, runner, stopping) =>
          runExport(job, { context, jobs, files, runner, stopping, afterChunk: (j) => this.afterChunk?.(j) }),
        failed: (_job, error) => ({
          state: 'failed',
          // A refusal the job met late (a _typeFilter whose SearchParameter was deleted meanwhile) says why.
          failure: error instanceof FhirError ? error.message : 'The export failed on the server; start it again',
          expiresAt: retention(),
        }),
        discard: (id) => files.removeJob(id),
      },
      options,
    );
  }
}
