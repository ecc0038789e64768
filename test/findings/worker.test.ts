import { MongoClient } from 'mongodb';
import pino from 'pino';
import { batchesOf, FindingsWorker, type WorkerOptions } from '../../src/modules/findings/worker';
import { ALL_PATIENTS } from '../../src/modules/findings/triggers';
import { WorkQueue } from '../../src/store/work-queue';
import { within } from '../multiprocess/cluster';
import { databaseNameFor } from '../support/server';

let client: MongoClient;
let queue: WorkQueue;
const dbName = databaseNameFor(__filename);
const PATIENTS = Array.from({ length: 12 }, (_, i) => `sweep-${i}`);

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  await client.db(dbName).dropDatabase();
  queue = new WorkQueue(client.db(dbName), '_findings_queue');
  await queue.ensureIndexes();
});
afterAll(async () => {
  await client.db(dbName).dropDatabase();
  await client.close();
});

const options = (owner: string, evaluate: WorkerOptions['evaluate']): WorkerOptions => ({
  owner,
  concurrency: 2,
  batchSize: 3,
  pollMs: 20,
  leaseMs: 400,
  evaluate,
  allPatients: async () => PATIENTS,
  logger: pino({ level: 'silent' }),
});

describe('the findings worker', () => {
  it('leaves the share of a process that dies mid-sweep to another, evaluating every patient', async () => {
    const done = new Map<string, string>();
    // "dead" expands the sweep and claims patients, then never finishes one: as a process killed mid-sweep.
    const dead = new FindingsWorker(
      queue,
      options('dead', () => new Promise<Map<string, unknown>>(() => undefined)),
    );
    await queue.enqueue([ALL_PATIENTS]);
    dead.start();
    await within(60_000, async () => (await queue.size()) >= PATIENTS.length);
    const alive = new FindingsWorker(
      queue,
      options('alive', async (patients) => {
        for (const patient of patients) done.set(patient, (done.get(patient) ?? '') + 'x');
        return new Map();
      }),
    );
    alive.start();
    await within(60_000, async () => (await queue.size()) === 0);
    await alive.stop();
    // Each patient evaluated once by the live process (those the dead one held, once their lease ran out).
    expect([...done.keys()].sort()).toEqual([...PATIENTS].sort());
    expect([...done.values()].every((v) => v === 'x')).toBe(true);
    expect(dead.evaluations).toBe(0);
    void dead.stop();
  });

  it('keeps the entry of a patient whose evaluation failed, for a retry, and completes the rest of its batch', async () => {
    const patients = ['batch-1', 'batch-2', 'batch-3', 'batch-4'];
    const batches: string[][] = [];
    const worker = new FindingsWorker(
      queue,
      options('one-fails', async (ids) => {
        batches.push(ids);
        return new Map(ids.filter((id) => id === 'batch-3').map((id) => [id, new Error('check failed')]));
      }),
    );
    await queue.enqueue(patients);
    worker.start();
    await within(60_000, async () => worker.evaluations + worker.failures >= patients.length);
    await worker.stop();
    // Evaluated together (batches of at most 3, two at once), each patient once.
    expect(batches.flat().sort()).toEqual(patients);
    expect(batches.every((b) => b.length <= 3)).toBe(true);
    expect(worker.evaluations).toBe(3);
    const left = await client.db(dbName).collection(queue.collectionName).find({}).toArray();
    expect(left.map((e) => e._id)).toEqual(['batch-3']);
    expect(left[0]).toMatchObject({ attempts: 1, lastError: 'check failed' });
    expect(left[0].leasedBy).toBeUndefined();
    await client.db(dbName).collection(queue.collectionName).deleteMany({});
  });

  it('keeps every entry of a batch whose evaluation threw', async () => {
    const worker = new FindingsWorker(
      queue,
      options('throws', async () => {
        throw new Error('engine unreachable');
      }),
    );
    await queue.enqueue(['thrown-1', 'thrown-2']);
    worker.start();
    await within(60_000, async () => worker.failures >= 2);
    await worker.stop();
    const left = await client.db(dbName).collection(queue.collectionName).find({}).sort({ _id: 1 }).toArray();
    expect(left.map((e) => [e._id, e.attempts])).toEqual([
      ['thrown-1', 1],
      ['thrown-2', 1],
    ]);
    await client.db(dbName).collection(queue.collectionName).deleteMany({});
  });

  it('shares claimed entries out in as few batches as fit, at most one per worker', () => {
    const ids = (n: number) => Array.from({ length: n }, (_, i) => i);
    expect(batchesOf(ids(0), 2, 3)).toEqual([]);
    expect(batchesOf(ids(2), 2, 3)).toEqual([[0, 1]]);
    expect(batchesOf(ids(5), 2, 3)).toEqual([
      [0, 1, 2],
      [3, 4],
    ]);
    expect(batchesOf(ids(6), 2, 25).map((b) => b.length)).toEqual([6]);
    expect(batchesOf(ids(30), 2, 25).map((b) => b.length)).toEqual([15, 15]);
  });
  it('evaluates while commits keep nudging it, sooner than its delay apart', async () => {
    const seen: string[] = [];
    // A long poll: only the nudges can start an evaluation here.
    const worker = new FindingsWorker(queue, {
      ...options('nudged', async (ids) => {
        seen.push(...ids);
        return new Map();
      }),
      pollMs: 600_000,
    });
    worker.start();
    // Its first look (at start) has found nothing and left it waiting for the poll.
    await new Promise((r) => setTimeout(r, 200));
    await queue.enqueue(['nudged-1']);
    // A sustained ingest: a commit every 20 ms, each asking for a look 200 ms later.
    let evaluatedWhileNudging = false;
    for (let i = 0; i < 75 && !evaluatedWhileNudging; i++) {
      worker.nudge(200);
      await new Promise((r) => setTimeout(r, 20));
      evaluatedWhileNudging = seen.includes('nudged-1');
    }
    expect(evaluatedWhileNudging).toBe(true);
    // A commit after a look was set queues an entry due after that look: it is looked at then, not
    // at the next poll.
    worker.nudge(200);
    await new Promise((r) => setTimeout(r, 100));
    await queue.enqueue(['nudged-2'], {}, new Date(Date.now() + 200));
    worker.nudge(200);
    await within(10_000, async () => seen.includes('nudged-2'));
    await worker.stop();
    expect(seen.sort()).toEqual(['nudged-1', 'nudged-2']);
  });
});
