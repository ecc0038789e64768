import type { Logger } from 'pino';
import type { QueueEntry, WorkQueue } from '../../store/work-queue';
import { ALL_PATIENTS } from './triggers';

export interface WorkerOptions {
  /** Names this process as the holder of its leases. */
  owner: string;
  /** Batches worked at once. */
  concurrency: number;
  /** Most patients evaluated together: their reads and their commit are shared. */
  batchSize: number;
  pollMs: number;
  /** How long a claimed entry is this process's before another may take it (a crashed worker's). */
  leaseMs: number;
  /** Evaluates patients together; answers the failure of each one that failed (the others are done). */
  evaluate(patientIds: string[]): Promise<Map<string, unknown>>;
  /** The patients ALL_PATIENTS stands for. */
  allPatients(): Promise<string[]>;
  logger: Logger;
}

/** Queued patients per enqueue call when ALL_PATIENTS is expanded. */
const EXPAND_CHUNK = 500;

/**
 * Claims due entries of the findings queue with leases and works them in batches of patients: one
 * evaluation per patient entry, however many times it was queued; ALL_PATIENTS is expanded into one entry per patient, so
 * that every process shares that work. A failed evaluation is retried with a growing delay.
 */
export class FindingsWorker {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Set when a nudge arrives during a drain: how soon to look again once it ends. */
  private againIn?: number;
  /** When the pending timer fires (epoch ms). */
  private timerDueAt = 0;
  /**
   * The latest time a nudge asked to look at (epoch ms): entries queued by commits after the pending
   * timer was set fall due after it fires, and are looked at then, not at the next poll.
   */
  private latestDue = 0;
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
    const dueAt = Date.now() + delayMs;
    this.latestDue = Math.max(this.latestDue, dueAt);
    if (this.running) {
      this.againIn = Math.min(this.againIn ?? Infinity, delayMs);
      return;
    }
    // An earlier look stays: commits less than the delay apart would otherwise put it off for as long
    // as they keep coming (a sustained ingest), and no finding would be evaluated meanwhile.
    if (this.timer && this.timerDueAt <= dueAt) return;
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
    this.timerDueAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const lookedAt = Date.now();
      this.running = this.drain()
        .catch((error: unknown) => this.options.logger.error({ err: error }, 'findings worker failed'))
        .finally(() => {
          this.running = undefined;
          let again = this.againIn ?? this.options.pollMs;
          this.againIn = undefined;
          // Asked for a time after the drain began looking: entries may have fallen due since.
          if (this.latestDue > lookedAt) again = Math.min(again, Math.max(0, this.latestDue - Date.now()));
          this.schedule(again);
        });
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Works due entries until none is left: up to `concurrency` batches at once, as few as the entries
   * claimed fill (a batch's reads and commit cost about what one patient's do).
   */
  private async drain(): Promise<void> {
    const { owner, concurrency, batchSize, leaseMs } = this.options;
    while (!this.stopped) {
      const entries = await this.queue.claim(owner, concurrency * batchSize, leaseMs);
      if (!entries.length) return;
      const patients = entries.filter((entry) => entry._id !== ALL_PATIENTS);
      const sweeps = entries.filter((entry) => entry._id === ALL_PATIENTS);
      await Promise.all([
        ...sweeps.map((entry) => this.expandEntry(entry)),
        ...batchesOf(patients, concurrency, batchSize).map((batch) => this.work(batch)),
      ]);
    }
  }

  private async work(batch: QueueEntry[]): Promise<void> {
    let failed: Map<string, unknown>;
    try {
      failed = await this.options.evaluate(batch.map((entry) => entry._id));
    } catch (error) {
      failed = new Map(batch.map((entry) => [entry._id, error]));
    }
    const done = batch.filter((entry) => !failed.has(entry._id));
    this.evaluations += done.length;
    try {
      await this.queue.completeAll(done);
    } catch (error) {
      for (const entry of done) failed.set(entry._id, error);
    }
    await Promise.all(
      batch.filter((entry) => failed.has(entry._id)).map((entry) => this.retry(entry, failed.get(entry._id))),
    );
  }

  private async expandEntry(entry: QueueEntry): Promise<void> {
    try {
      await this.expand();
      await this.queue.complete(entry);
    } catch (error) {
      await this.retry(entry, error);
    }
  }

  /** A failed evaluation is tried again with a growing delay. */
  private async retry(entry: QueueEntry, error: unknown): Promise<void> {
    this.failures++;
    const attempts = (entry.attempts ?? 0) + 1;
    const delayMs = Math.min(300_000, 1000 * 2 ** Math.min(attempts, 9));
    this.options.logger.warn({ err: error, patient: entry._id, attempts, delayMs }, 'findings evaluation failed');
    await this.queue
      .retry(entry, delayMs, { lastError: (error as Error | undefined)?.message?.slice(0, 500) })
      .catch((failure: unknown) => this.options.logger.error({ err: failure }, 'findings retry not recorded'));
  }

  private async expand(): Promise<void> {
    const patients = await this.options.allPatients();
    for (let i = 0; i < patients.length; i += EXPAND_CHUNK) {
      await this.queue.enqueue(patients.slice(i, i + EXPAND_CHUNK));
    }
    this.options.logger.info({ patients: patients.length }, 'every patient with active medications queued');
  }
}

/** At most `concurrency` batches of at most `batchSize` entries, as even as they come. */
export function batchesOf<T>(entries: T[], concurrency: number, batchSize: number): T[][] {
  if (!entries.length) return [];
  const count = Math.min(Math.max(1, concurrency), Math.ceil(entries.length / batchSize));
  const size = Math.ceil(entries.length / count);
  const batches: T[][] = [];
  for (let i = 0; i < entries.length; i += size) batches.push(entries.slice(i, i + size));
  return batches;
}
