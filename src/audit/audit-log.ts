import type { AuditEvent } from '@medplum/fhirtypes';

export interface AuditLogOptions {
  /** Stores events durably (the store's append of immutable resources); safe to call again with the same events. */
  store(events: AuditEvent[]): Promise<void>;
  /** Longest a read's event waits before its batch is committed. */
  batchMs?: number;
  /** Events per commit: more waiting is committed at once, in several commits. */
  maxBatch?: number;
  /** Events waiting beyond which every new one waits for its commit, as a write's does (backpressure). */
  highWater?: number;
  /** Commits of a batch before its events are given up (reported through onLost). */
  maxAttempts?: number;
  /** A failed commit (the caller logs it without the events, which hold who read what). */
  onError?(error: unknown, waiting: number): void;
  /** Events that could not be stored after every attempt, or were waiting when close() failed. */
  onLost?(count: number, error: unknown): void;
}

/** The audit trail cannot take the event: the interaction is answered 503 rather than unaudited. */
export class AuditUnavailableError extends Error {}

interface Pending {
  events: AuditEvent[];
  at: number;
  attempts: number;
  /** Set while someone waits for these events to be durable (writes, and reads under backpressure). */
  waiter?: { resolve(): void; reject(error: unknown): void };
}

/**
 * The audit trail's way into the store. A write's events are committed before its answer (group
 * commit: writes arriving while a commit runs share the next one, with the reads waiting by then); a
 * read's events wait at most `batchMs` and go in one commit per batch. Events whose commit fails stay
 * queued and are tried again, so a passing database failure loses nothing; past `highWater` waiting
 * events every interaction waits for its own (a failing store then answers 503, not unaudited data).
 */
export class AuditLog {
  private readonly batchMs: number;
  private readonly maxBatch: number;
  private readonly highWater: number;
  private readonly maxAttempts: number;
  private queue: Pending[] = [];
  private waitingEvents = 0;
  private timer?: NodeJS.Timeout;
  private running?: Promise<boolean>;
  private forced = false;
  private retryAfter = 0;
  private closed = false;

  constructor(private readonly options: AuditLogOptions) {
    this.batchMs = options.batchMs ?? 1000;
    // Bounded so that each insert stays short: the embedded engine holds its one write lock throughout.
    this.maxBatch = options.maxBatch ?? 100;
    this.highWater = options.highWater ?? 5000;
    this.maxAttempts = options.maxAttempts ?? 10;
  }

  /** Events waiting for their commit. */
  get waiting(): number {
    return this.waitingEvents;
  }

  /**
   * Queues the events of one interaction (a Bundle's together: one commit holds them all). Durable:
   * resolves once they are committed, rejects if the commit fails. Otherwise resolves at once.
   */
  record(events: AuditEvent[], options: { durable: boolean }): Promise<void> {
    if (this.closed) return Promise.reject(new AuditUnavailableError('the audit trail is closed'));
    if (!events.length) return Promise.resolve();
    const pending: Pending = { events, at: Date.now(), attempts: 0 };
    const durable = options.durable || this.waitingEvents >= this.highWater;
    const done = durable
      ? new Promise<void>((resolve, reject) => (pending.waiter = { resolve, reject }))
      : Promise.resolve();
    this.queue.push(pending);
    this.waitingEvents += events.length;
    if (durable || this.waitingEvents >= this.maxBatch) this.kick();
    else this.schedule();
    return done;
  }

  /** Commits everything waiting now; rejects if a commit fails (the events stay queued). */
  async flush(): Promise<void> {
    this.forced = true;
    try {
      while (this.queue.length) {
        this.kick();
        if (!(await this.running)) throw new AuditUnavailableError('the audit trail could not be stored');
      }
    } finally {
      this.forced = false;
    }
  }

  /** Stops taking events and commits those waiting (at shutdown); reports what could not be stored. */
  async close(): Promise<void> {
    this.closed = true;
    this.retryAfter = 0;
    try {
      await this.flush();
    } catch (error) {
      if (this.waitingEvents) this.options.onLost?.(this.waitingEvents, error);
    } finally {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private schedule(): void {
    if (this.timer || this.running || !this.queue.length || this.closed) return;
    const due = Math.max(this.queue[0].at + this.batchMs, this.retryAfter);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.kick();
      },
      Math.max(0, due - Date.now()),
    );
    this.timer.unref();
  }

  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  /** Whether the queue must be committed now rather than when its oldest read event is due. */
  private due(): boolean {
    if (!this.queue.length) return false;
    if (this.forced || this.waitingEvents >= this.maxBatch) return true;
    if (this.queue.some((p) => p.waiter)) return true;
    return Date.now() >= Math.max(this.queue[0].at + this.batchMs, this.retryAfter);
  }

  /** Commits batches while some are due; false when a commit failed (the batch is queued again). */
  private async drain(): Promise<boolean> {
    while (this.due()) {
      const batch = this.take();
      const events = batch.flatMap((p) => p.events);
      try {
        await this.options.store(events);
      } catch (error) {
        this.failed(batch, error);
        return false;
      }
      this.waitingEvents -= events.length;
      for (const pending of batch) pending.waiter?.resolve();
      this.retryAfter = 0;
    }
    return true;
  }

  /** The oldest waiting events, up to maxBatch (one interaction's events are never split). */
  private take(): Pending[] {
    const batch: Pending[] = [];
    let count = 0;
    while (this.queue.length && (!batch.length || count + this.queue[0].events.length <= this.maxBatch)) {
      const next = this.queue.shift() as Pending;
      batch.push(next);
      count += next.events.length;
    }
    return batch;
  }

  private failed(batch: Pending[], error: unknown): void {
    this.options.onError?.(error, this.waitingEvents);
    const kept: Pending[] = [];
    let lost = 0;
    for (const pending of batch) {
      pending.waiter?.reject(error);
      pending.waiter = undefined;
      pending.attempts++;
      if (pending.attempts < this.maxAttempts) kept.push(pending);
      else lost += pending.events.length;
    }
    if (lost) {
      this.waitingEvents -= lost;
      this.options.onLost?.(lost, error);
    }
    // Tried again first, when the next commit is due; a failing store is not retried in a tight loop.
    this.queue.unshift(...kept);
    this.retryAfter = Date.now() + this.batchMs;
  }
}
