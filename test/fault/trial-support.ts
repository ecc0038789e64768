// Pieces the fault tests share: a seeded random source (so a failing trial can be replayed with
// FAULT_SEED), a background stream of single creates whose acknowledgements are recorded, and a
// counter of the database commands that carry a set's content.
import type { Patient } from '@medplum/fhirtypes';
import { fhir } from './fhir-client';
import type { FrameVerdict, WireProxy } from './harness';
import { FAULT_TAG_SYSTEM } from './medication-set';

export { seededRandom } from '../../bench/seeded-random';

export function seedFromEnv(): number {
  const raw = process.env.FAULT_SEED;
  return raw && /^\d+$/.test(raw) ? Number(raw) : Math.floor(Math.random() * 2 ** 31);
}

/**
 * Watches the messages to the engine for a commit of a set tagged `marker`: the commit starts with the
 * first message that carries the marker (only writes of the set's content do), and from there every
 * message counts as one of its steps, whatever it is (content writes, a commit record, clean-up, and
 * also whatever other clients send meanwhile: the crash point is a moment, not a statement).
 */
export function watchCommit(proxy: WireProxy, marker: string, onStep?: (step: number) => FrameVerdict) {
  const needle = Buffer.from(marker);
  let steps = 0;
  let contentWrites = 0;
  proxy.onFrame = (frame) => {
    if (frame.includes(needle)) contentWrites++;
    if (contentWrites === 0) return 'forward';
    steps++;
    return onStep?.(steps) ?? 'forward';
  };
  return {
    steps: () => steps,
    contentWrites: () => contentWrites,
    stop: () => {
      proxy.onFrame = undefined;
    },
  };
}

/**
 * Arms the proxy to stop the world at the `k`-th step of the commit (see `watchCommit`): before that
 * message reaches the engine ('before'), right after ('after'), or `graceMs` later while traffic flows
 * on ('grace', which also reaches moments between messages). `fired` resolves when it has.
 */
export function armCrashPoint(
  proxy: WireProxy,
  marker: string,
  k: number,
  mode: 'before' | 'after' | 'grace',
  graceMs: number,
) {
  let fire: () => void = () => undefined;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  const watch = watchCommit(proxy, marker, (step): FrameVerdict => {
    if (step !== k) return 'forward';
    if (mode === 'grace') {
      setTimeout(() => {
        proxy.freeze();
        fire();
      }, graceMs);
      return 'forward';
    }
    fire();
    return mode === 'before' ? 'freeze-before' : 'freeze-after';
  });
  return { fired, ...watch };
}

/** Single creates sent in a loop by `workers` clients until stopped; keeps the id of every 201. */
export class CreateStream {
  readonly acknowledged: string[] = [];
  readonly failures: string[] = [];
  private running = true;
  private readonly done: Promise<void[]>;

  constructor(
    base: string,
    private readonly tag: string,
    workers = 2,
    private readonly maxPerWorker = 200,
  ) {
    this.done = Promise.all(Array.from({ length: workers }, () => this.work(base)));
  }

  private async work(base: string): Promise<void> {
    for (let i = 0; this.running && i < this.maxPerWorker; i++) {
      const patient: Patient = {
        resourceType: 'Patient',
        meta: { tag: [{ system: FAULT_TAG_SYSTEM, code: this.tag }] },
        name: [{ family: 'Concurrent', given: [`c${i}`] }],
      };
      const answer = await fhir(base, 'POST', 'Patient', { body: patient, timeoutMs: 30_000 });
      if (answer.status === 201 && answer.body?.id) this.acknowledged.push(answer.body.id);
      // Anything but 201 or a dead connection while the stream runs is worth a look.
      else if (answer.status !== 0) this.failures.push(`${answer.status}`);
      else if (this.running) await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}
