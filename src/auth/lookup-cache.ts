import type { CurrentDocument } from '../store/documents';
import type { Journal } from '../store/journal';

interface Entry {
  at: number;
  docs: Promise<CurrentDocument[]>;
}

/**
 * The access decision's look-ups (a practitioner's CareTeams, the patients it is general practitioner
 * of, the Consents naming it) kept between requests. An entry is used only while no commit writing its
 * type has settled since it was read: the journal's decisions say so for every server process on the
 * database, so a care team changed anywhere applies to the next request. Entries older than half the
 * decisions' retention are read again, since the journal no longer remembers that far back.
 */
/** One entry's question to the journal, answered together with the others asked in the same tick. */
interface Check {
  since: Date;
  type: string;
  answer: (stale: boolean) => void;
  fail: (error: unknown) => void;
}

export class LookupCache {
  private readonly entries = new Map<string, Entry>();
  private checks: Check[] = [];

  constructor(
    private readonly journal: Journal,
    private readonly clockSkewMs: number,
    private readonly maxEntries = 500,
  ) {}

  async find(
    type: string,
    query: [string, string][],
    load: () => Promise<CurrentDocument[]>,
  ): Promise<CurrentDocument[]> {
    const key = `${type}?${new URLSearchParams(query).toString()}`;
    const entry = this.entries.get(key);
    const now = Date.now();
    if (entry && now - entry.at < this.journal.retentionMs / 2) {
      const stale = await this.changedSince(new Date(entry.at - this.clockSkewMs), type);
      if (!stale) {
        // Most recently used last, so the oldest goes first when the cache is full.
        this.entries.delete(key);
        this.entries.set(key, entry);
        return entry.docs;
      }
    }
    const fresh: Entry = { at: now, docs: load() };
    this.entries.delete(key);
    this.entries.set(key, fresh);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    try {
      return await fresh.docs;
    } catch (error) {
      this.entries.delete(key);
      throw error;
    }
  }

  /**
   * Whether a commit writing `type` settled since `since`. A decision looks its entries up together
   * (a practitioner's care teams, patients and consents), so the questions of one tick go to the
   * journal as one query from the earliest of their times.
   */
  private changedSince(since: Date, type: string): Promise<boolean> {
    return new Promise((answer, fail) => {
      if (!this.checks.length) queueMicrotask(() => void this.answerChecks());
      this.checks.push({ since, type, answer, fail });
    });
  }

  private async answerChecks(): Promise<void> {
    const checks = this.checks;
    this.checks = [];
    const earliest = new Date(Math.min(...checks.map((c) => c.since.getTime())));
    try {
      const changes = await this.journal.changesSince(earliest, [...new Set(checks.map((c) => c.type))]);
      for (const check of checks) {
        check.answer(changes.some((d) => d.settled >= check.since && d.types.includes(check.type)));
      }
    } catch (error) {
      for (const check of checks) check.fail(error);
    }
  }
}
