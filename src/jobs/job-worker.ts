import type { Logger } from 'pino';
import type { ResourceStore } from '../store/resource-store';
import type { BackgroundJob, JobRunner, JobStore } from './job-store';

export type RunResult = 'completed' | 'stopped' | 'lost';

export interface JobWorkerOptions {
  /** Pause between looks for work (a kick-off in this process wakes it at once); default 500 ms. */
  pollMs?: number;
  /** Pause between sweeps of expired and cancelled jobs; default 5 s. */
  sweepMs?: number;
}

/** What one kind of job does; the worker does the claiming, the loop, failures and the sweep. */
export interface JobKind<T extends BackgroundJob> {
  /** For the log. */
  name: string;
  /** Runs (or resumes) a claimed job; `stopping()` turns true when the process shuts down. */
  run(job: T, runner: JobRunner, stopping: () => boolean): Promise<RunResult>;
  /** The fields a job that threw is left with (state failed, why, when it expires). */
  failed(job: T, error: unknown): Partial<T>;
  /** Cleans up what a job left beside its record (files), when it fails, is lost to a cancel or expires. */
  discard?(jobId: string): Promise<void>;
}

/**
 * Runs background jobs, one at a time per process. A job is claimed with a compare-and-set of its
 * runner: nobody's, or a process that is gone (its heartbeat in `_processes` lapsed, or this server
 * restarted), so only one process works a job at a time and a job whose process died resumes elsewhere
 * from what it last recorded. Also deletes jobs whose retention ran out.
 */
export class JobWorker<T extends BackgroundJob> {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopping = false;
  private lastSweep = 0;
  readonly runner: JobRunner;
  private readonly pollMs: number;
  private readonly sweepMs: number;

  constructor(
    private readonly store: ResourceStore,
    private readonly logger: Logger,
    private readonly jobs: JobStore<T>,
    private readonly kind: JobKind<T>,
    options: JobWorkerOptions = {},
  ) {
    this.runner = { server: store.processes.serverId, incarnation: store.processes.incarnation };
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
      .catch((error: unknown) => this.logger.error({ err: error }, `${this.kind.name} worker failed`))
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Stops after the current step; the job is left to be resumed (by this server's next start at once). */
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

  private async claimNext(): Promise<T | null> {
    for (const candidate of await this.jobs.unfinished(20)) {
      const from = candidate.runner;
      if (from && (await this.store.processes.isAlive(from))) continue;
      const job = await this.jobs.claim(candidate._id, this.runner, from);
      if (job) return job;
    }
    return null;
  }

  private async run(job: T): Promise<void> {
    try {
      const result = await this.kind.run(job, this.runner, () => this.stopping);
      if (result === 'lost') {
        // Cancelled meanwhile (or taken over): what this runner left after the cancel goes too.
        const current = await this.jobs.get(job._id);
        if (!current || current.state === 'cancelled') await this.kind.discard?.(job._id);
      }
      this.logger.info({ job: job._id, result }, `${this.kind.name} job ran`);
    } catch (error) {
      this.logger.error({ err: error, job: job._id }, `${this.kind.name} job failed`);
      await this.jobs.update(job._id, this.runner, { ...this.kind.failed(job, error), runner: null });
      await this.kind.discard?.(job._id);
    }
  }

  private async sweep(): Promise<void> {
    for (const job of await this.jobs.expired(new Date(), 50)) {
      await this.kind.discard?.(job._id);
      await this.jobs.remove(job._id);
    }
  }
}
