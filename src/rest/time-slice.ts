import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** How long a request may keep the event loop before it lets others (and health checks) run. */
export const SLICE_MS = 10;

/**
 * Yields to the event loop from a long loop of CPU work. Awaiting a handler that did no I/O (a Bundle
 * entry that only validates and stages) never gives the loop a turn, so a 1,000-entry Bundle held it
 * for a second; calling pause() between iterations gives it one every SLICE_MS.
 */
export class TimeSlice {
  private since = performance.now();

  async pause(): Promise<void> {
    if (performance.now() - this.since < SLICE_MS) return;
    await nextTurn();
    this.since = performance.now();
  }
}
