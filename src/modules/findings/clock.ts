import type { Db } from 'mongodb';

/** The settings document that holds a test clock, shared by every process on the database. */
const CLOCK_COLLECTION = '_findings_clock';
const CLOCK_ID = 'clock';

interface ClockDocument {
  _id: string;
  /** The instant the clock was set to. */
  at: Date;
  /** The real time it was set, so the test clock goes on ticking from there. */
  setAt: Date;
}

/**
 * The server's "now" for findings: what day it is (review date, sweep day). The system clock, or in
 * test mode (FINDINGS_CLOCK=test) a clock a test moves through POST [base]/$test-clock, kept in the
 * database so that every server process on it agrees. Leases and retries keep using real time.
 */
export class FindingsClock {
  private offsetMs = 0;

  constructor(
    private readonly db: Db,
    readonly timeZone: string,
    readonly testMode: boolean,
  ) {}

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  /** Today's calendar date (YYYY-MM-DD) in the configured time zone. */
  today(): string {
    return localDate(this.now(), this.timeZone);
  }

  /** The local time of day (HH:MM) in the configured time zone. */
  timeOfDay(): string {
    return localTime(this.now(), this.timeZone);
  }

  /** Reads the shared test clock (another process may have moved it). */
  async refresh(): Promise<void> {
    if (!this.testMode) return;
    const doc = await this.db.collection<ClockDocument>(CLOCK_COLLECTION).findOne({ _id: CLOCK_ID });
    this.offsetMs = doc ? doc.at.getTime() - doc.setAt.getTime() : 0;
  }

  /** Moves the shared test clock to `at`. */
  async set(at: Date): Promise<void> {
    if (!this.testMode) throw new Error('the findings clock is the system clock');
    const setAt = new Date();
    await this.db
      .collection<ClockDocument>(CLOCK_COLLECTION)
      .updateOne({ _id: CLOCK_ID }, { $set: { at, setAt } }, { upsert: true });
    this.offsetMs = at.getTime() - setAt.getTime();
  }
}

export function localDate(at: Date, timeZone: string): string {
  // en-CA formats as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);
}

export function localTime(at: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '00';
  return `${get('hour')}:${get('minute')}`;
}
