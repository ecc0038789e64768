import { FhirError } from '../fhir/outcome';
import type { ServerContext } from '../rest/context';
import type { ExportFiles } from './files';
import type { ExportJob, ExportJobs, JobRunner } from './jobs';
import { runExport } from './runner';

export interface ExportWorkerOptions {
  /** Pause between looks for work (a kick-off in this process wakes it at once); default 500 ms. */
  pollMs?: number;
  /** Pause between sweeps of expired and cancelled exports; default 5 s. */
  sweepMs?: number;
}

/**
 * Runs export jobs in the background, one at a time per process. A job is claimed with a
 * compare-and-set of its runner: nobody's, or a process that is gone (its heartbeat in `_processes`
 * lapsed, or this server restarted), so only one process works a job at a time and a job whose
 * process died resumes elsewhere from its last recorded chunk. Also deletes exports whose retention
 * ran out, and the files of cancelled ones.
 */
export class ExportWorker {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopping = false;
  private lastSweep = 0;
  private readonly runner: JobRunner;
  private readonly pollMs: number;
  private readonly sweepMs: number;
  /** Called after every chunk a job records (tests stop the server there). */
  afterChunk?: (job: ExportJob) => void | Promise<void>;

  constructor(
    private readonly context: ServerContext,
    private readonly jobs: ExportJobs,
    private readonly files: ExportFiles,
    options: ExportWorkerOptions = {},
  ) {
    const { processes } = context.store;
    this.runner = { server: processes.serverId, incarnation: processes.incarnation };
    this.pollMs = options.pollMs ?? 500;
    this.sweepMs = options.sweepMs ?? 5000;
  }

  start(): void {
    this.timer = setInterval(() => this.wake(), this.pollMs);
    this.timer.unref();
    this.wake();
  }

  /** Looks for work now, unless a job is running. */
  wake(): void {
    if (this.running || this.stopping) return;
    this.running = this.work()
      .catch((error: unknown) => this.context.logger.error({ err: error }, 'export worker failed'))
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Stops after the current chunk; the job is left to be resumed (by this server's next start at once). */
  async close(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  private async work(): Promise<void> {
    if (Date.now() - this.lastSweep >= this.sweepMs) {
      this.lastSweep = Date.now();
      await this.sweep();
    }
    while (!this.stopping) {
      const job = await this.claimNext();
      if (!job) return;
      await this.run(job);
    }
  }

  private async claimNext(): Promise<ExportJob | null> {
    for (const candidate of await this.jobs.unfinished(20)) {
      const from = candidate.runner;
      if (from && (await this.context.store.processes.isAlive(from))) continue;
      const job = await this.jobs.claim(candidate._id, this.runner, from);
      if (job) return job;
    }
    return null;
  }

  private async run(job: ExportJob): Promise<void> {
    const { logger } = this.context;
    try {
      const result = await runExport(job, {
        context: this.context,
        jobs: this.jobs,
        files: this.files,
        runner: this.runner,
        stopping: () => this.stopping,
        afterChunk: (j) => this.afterChunk?.(j),
      });
      if (result === 'lost') {
        // Cancelled meanwhile (or taken over): what this runner wrote after the cancel goes too.
        const current = await this.jobs.get(job._id);
        if (!current || current.state === 'cancelled') await this.files.removeJob(job._id);
      }
      logger.info({ job: job._id, result }, 'export job ran');
    } catch (error) {
      logger.error({ err: error, job: job._id }, 'export job failed');
      const expiresAt = new Date(Date.now() + this.context.config.exportRetentionSeconds * 1000);
      await this.jobs.update(job._id, this.runner, {
        state: 'failed',
        // A refusal the job met late (a _typeFilter whose SearchParameter was deleted meanwhile) says why.
        failure: error instanceof FhirError ? error.message : 'The export failed on the server; start it again',
        expiresAt,
        runner: null,
      });
      await this.files.removeJob(job._id);
    }
  }

  private async sweep(): Promise<void> {
    for (const job of await this.jobs.expired(new Date(), 50)) {
      await this.files.removeJob(job._id);
      await this.jobs.remove(job._id);
    }
  }
}
