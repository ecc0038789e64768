import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import type { WorkQueue } from '../../store/work-queue';
import type { FindingsClock } from './clock';
import { ALL_PATIENTS } from './triggers';

/** One document per day swept: inserted once, so with several processes one of them runs the day's sweep. */
export const SWEEPS_COLLECTION = '_findings_sweeps';

export interface SweepDocument {
  _id: string;
  by: string;
  at: Date;
  /** `started` until the day's work is queued: a process that finds it so for long queues it again. */
  state: 'started' | 'queued';
}

/** How long a sweep may stay `started` before another process takes it for crashed. */
const STALLED_MS = 60_000;

/**
 * The daily sweep: from FINDINGS_SWEEP_TIME (local time in FINDINGS_TIME_ZONE) every patient with
 * active medications is queued to be evaluated as of that day, so findings that appear by the passage
 * of time (a supply running out) are found the day they appear. The process that inserts the day's
 * record queues ALL_PATIENTS, which a worker expands into one entry per patient: the evaluations are
 * shared out by the queue's leases, and the work of a process that dies is taken up by another.
 */
export class DailySweep {
  constructor(
    private readonly db: Db,
    private readonly queue: WorkQueue,
    private readonly clock: FindingsClock,
    private readonly sweepTime: string,
    private readonly serverId: string,
    private readonly logger: Logger,
  ) {}

  private get sweeps() {
    return this.db.collection<SweepDocument>(SWEEPS_COLLECTION);
  }

  /** Runs today's sweep if it is time and no process has; answers whether this call ran it. */
  async tick(): Promise<boolean> {
    await this.clock.refresh();
    if (this.clock.timeOfDay() < this.sweepTime) return false;
    const day = this.clock.today();
    // Nearly every tick finds the day done: a read, rather than an insert that fails.
    const done = await this.sweeps.findOne({ _id: day });
    if (done) {
      if (done.state === 'started') await this.resumeStalled(day);
      return false;
    }
    try {
      await this.sweeps.insertOne({ _id: day, by: this.serverId, at: new Date(), state: 'started' });
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      await this.resumeStalled(day);
      return false;
    }
    await this.queueDay(day);
    this.logger.info({ day }, 'daily findings sweep queued');
    return true;
  }

  private async queueDay(day: string): Promise<void> {
    await this.queue.enqueue([ALL_PATIENTS], { sweep: day });
    await this.sweeps.updateOne({ _id: day }, { $set: { state: 'queued' } });
  }

  private async resumeStalled(day: string): Promise<void> {
    const stalled = await this.sweeps.findOneAndUpdate(
      { _id: day, state: 'started', at: { $lt: new Date(Date.now() - STALLED_MS) } },
      { $set: { by: this.serverId, at: new Date() } },
    );
    if (stalled) await this.queueDay(day);
  }
}

function isDuplicateKey(error: unknown): boolean {
  return (error as { code?: unknown }).code === 11000;
}
