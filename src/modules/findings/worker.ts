import type { Logger } from 'pino';
import type { QueueEntry, WorkQueue } from '../../store/work-queue';
import { ALL_PATIENTS } from './triggers';

export interface WorkerOptions {
  /** Names this process as the holder of its leases. */
  owner: string;
  /** Entries worked at once. */
  concurrency: number;
  pollMs: number;
  /** How long a claimed entry is this process's before another may take it (a crashed worker's). */
  leaseMs: number;
  /** Evaluates one patient. */
  evaluate(patientId: string, entry: QueueEntry): Promise<void>;
  /** The patients ALL_PATIENTS stands for. */
  allPatients(): Promise<string[]>;
  logger: Logger;
}

/** Queued patients per enqueue call when ALL_PATIENTS is expanded. */
const EXPAND_CHUNK = 500;

/**
 * Claims due entries of the findings queue with leases and works them: one evaluation per patient
 * entry, however many times it was queued; ALL_PATIENTS is expanded into one entry per patient, so
 * that every process shares that work. A failed evaluation is retried with a growing delay.
 */
export class FindingsWorker {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Set when a nudge arrives during a drain: how soon to look again once it ends. */
  private againIn?: number;
  /** Evaluations finished by this process (tests, the benchmark and the health details read it). */
  evaluations = 0;
  failures = 0;

  constructor(
    private readonly queue: WorkQueue,
    private readonly options: WorkerOptions,
  ) {}

  start(): void {
    this.schedule(0);
  }

  /** Looks for work now (a commit of this process just queued some). */
  nudge(delayMs = 0): void {
    if (this.stopped) return;
    if (this.running) {
      this.againIn = Math.min(this.againIn ?? Infinity, delayMs);
      return;
    }
    this.schedule(delayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.drain()
        .catch((error: unknown) => this.options.logger.error({ err: error }, 'findings worker failed'))
        .finally(() => {
          this.running = undefined;
          const again = this.againIn;
          this.againIn = undefined;
          this.schedule(again ?? this.options.pollMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  /** Works due entries until none is left. */
  private async drain(): Promise<void> {
    const { owner, concurrency, leaseMs } = this.options;
    while (!this.stopped) {
      const entries = await this.queue.claim(owner, concurrency, leaseMs);
      if (!entries.length) return;
      await Promise.all(entries.map((entry) => this.work(entry)));
    }
  }

  private async work(entry: QueueEntry): Promise<void> {
    try {
      if (entry._id === ALL_PATIENTS) await this.expand();
      else await this.options.evaluate(entry._id, entry);
      if (entry._id !== ALL_PATIENTS) this.evaluations++;
      await this.queue.complete(entry);
    } catch (error) {
      this.failures++;
      const attempts = (entry.attempts ?? 0) + 1;
      const delayMs = Math.min(300_000, 1000 * 2 ** Math.min(attempts, 9));
      this.options.logger.warn({ err: error, patient: entry._id, attempts, delayMs }, 'findings evaluation failed');
      await this.queue
        .retry(entry, delayMs, { lastError: (error as Error).message?.slice(0, 500) })
        .catch((failure: unknown) => this.options.logger.error({ err: failure }, 'findings retry not recorded'));
    }
  }

  private async expand(): Promise<void> {
    const patients = await this.options.allPatients();
    for (let i = 0; i < patients.length; i += EXPAND_CHUNK) {
      await this.queue.enqueue(patients.slice(i, i + EXPAND_CHUNK));
    }
    this.options.logger.info({ patients: patients.length }, 'every patient with active medications queued');
  }
}
