/**
 * Keeps the background reindex (src/search/reindex.ts) from interleaving with commits in this process.
 *
 * FerretDB 1.x answers `updateOne({_id, v}, {$set: ...})` by reading the document and writing the
 * whole of it back, so a commit that replaces the document between that read and that write would be
 * reverted to the older version (the current document then lags its history, and every later update
 * of it conflicts). Commits hold the gate shared for each replace of a current document; a reindex
 * batch holds it exclusively for its read and its writes. Shared holders never wait for each other.
 * Real MongoDB applies an update atomically, so there the gate only costs a short wait during a reindex.
 */
export class WriteGate {
  private readonly holders = new Map<string, number>();
  private readonly exclusiveRuns = new Map<string, Promise<void>>();
  private readonly drainWaiters = new Map<string, () => void>();

  /** Runs `work` while no exclusive holder of `type` runs; any number of shared holders at once. */
  async shared<T>(type: string, work: () => Promise<T>): Promise<T> {
    for (let running = this.exclusiveRuns.get(type); running; running = this.exclusiveRuns.get(type)) {
      await running;
    }
    this.holders.set(type, (this.holders.get(type) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = (this.holders.get(type) ?? 1) - 1;
      if (left > 0) this.holders.set(type, left);
      else {
        this.holders.delete(type);
        this.drainWaiters.get(type)?.();
      }
    }
  }

  /** Runs `work` alone for `type`: new shared holders wait, and it starts once the current ones finish. */
  async exclusive<T>(type: string, work: () => Promise<T>): Promise<T> {
    for (let running = this.exclusiveRuns.get(type); running; running = this.exclusiveRuns.get(type)) {
      await running;
    }
    let release = (): void => undefined;
    this.exclusiveRuns.set(type, new Promise<void>((resolve) => (release = resolve)));
    try {
      if (this.holders.has(type)) {
        await new Promise<void>((resolve) => this.drainWaiters.set(type, resolve));
      }
      return await work();
    } finally {
      this.drainWaiters.delete(type);
      this.exclusiveRuns.delete(type);
      release();
    }
  }
}
