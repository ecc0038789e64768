import { MongoClient } from 'mongodb';
import pino from 'pino';
import { FindingsWorker, type WorkerOptions } from '../../src/modules/findings/worker';
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
});
