import { MongoClient } from 'mongodb';
import { ResourceStore } from '../../src/store/resource-store';
import { WorkQueue } from '../../src/store/work-queue';
import { databaseNameFor } from '../support/server';

let client: MongoClient;
let queue: WorkQueue;
const dbName = databaseNameFor(__filename);

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  await client.db(dbName).dropDatabase();
  queue = new WorkQueue(client.db(dbName), '_test_queue');
  await queue.ensureIndexes();
});
afterEach(() => client.db(dbName).collection('_test_queue').deleteMany({}));
afterAll(async () => {
  await client.db(dbName).dropDatabase();
  await client.close();
});

describe('work queue', () => {
  it('hold one entry per key, written with the commit that causes it', async () => {
    const store = new ResourceStore(client.db(dbName));
    await store.ensureIndexes(['Patient']);
    for (const id of ['q-1', 'q-2', 'q-3']) {
      await store.commit(
        [{ type: 'Patient', id, method: 'PUT', previous: null, resource: { resourceType: 'Patient' } }],
        undefined,
        [queue.entry('Patient/shared')],
      );
    }
    expect(await queue.size()).toBe(1);
  });

  it('lease each entry to one of several racing workers', async () => {
    await queue.enqueue(Array.from({ length: 30 }, (_, i) => `key-${i}`));
    const batches = await Promise.all(['a', 'b', 'c'].map((owner) => queue.claim(owner, 30, 60_000)));
    const keys = batches.flat().map((e) => e._id);
    expect(keys).toHaveLength(30);
    expect(new Set(keys).size).toBe(30);
    expect(await queue.claim('d', 10, 60_000)).toEqual([]);
  });

  it('find the free entries behind many that other workers hold', async () => {
    await queue.enqueue(Array.from({ length: 100 }, (_, i) => `held-${i}`));
    const held = await queue.claim('busy', 100, 60_000);
    expect(held).toHaveLength(100);
    await queue.enqueue(['free-1', 'free-2', 'free-3']);
    const claimed = await queue.claim('idle', 2, 60_000);
    expect(claimed).toHaveLength(2);
    expect(claimed.every((e) => e._id.startsWith('free-') && e.leasedBy === 'idle')).toBe(true);
    const rest = await queue.claim('idle', 5, 60_000);
    expect(rest.map((e) => e._id)).toEqual(
      ['free-1', 'free-2', 'free-3'].filter((k) => !claimed.some((c) => c._id === k)),
    );
  });

  it('run an entry again when it was queued while being worked, and give an expired lease to another worker', async () => {
    await queue.enqueue(['patient']);
    const [first] = await queue.claim('a', 1, 60_000);
    await queue.enqueue(['patient']);
    expect(await queue.complete(first)).toBe(false);
    const [again] = await queue.claim('b', 1, 60_000);
    expect(again._id).toBe('patient');
    expect(await queue.complete(again)).toBe(true);
    expect(await queue.size()).toBe(0);

    await queue.enqueue(['stalled']);
    const [stalled] = await queue.claim('dead', 1, 50);
    expect(stalled._id).toBe('stalled');
    expect(await queue.claim('b', 1, 60_000)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    const [takenOver] = await queue.claim('b', 1, 60_000);
    expect(takenOver).toMatchObject({ _id: 'stalled', leasedBy: 'b' });
    // The dead worker's late completion is still honoured (the work was done), the release of the new lease is not its to make.
    await queue.retry(stalled, 0);
    expect(await queue.claim('c', 1, 60_000)).toEqual([]);
  });

  it('complete several entries at once, keeping and releasing one queued again while being worked', async () => {
    await queue.enqueue(['many-1', 'many-2', 'many-3']);
    const claimed = await queue.claim('a', 3, 60_000);
    expect(claimed).toHaveLength(3);
    await queue.enqueue(['many-2']);
    await queue.completeAll(claimed);
    const left = await client.db(dbName).collection('_test_queue').find({}).toArray();
    expect(left.map((e) => e._id)).toEqual(['many-2']);
    expect(left[0].leasedBy).toBeUndefined();
    // Released, so it is worked again.
    expect((await queue.claim('b', 3, 60_000)).map((e) => e._id)).toEqual(['many-2']);
  });

  it('hold a retried entry back until its delay has passed, counting attempts', async () => {
    await queue.enqueue(['flaky']);
    const [entry] = await queue.claim('a', 1, 60_000);
    await queue.retry(entry, 60_000, { lastError: 'refused' });
    expect(await queue.claim('a', 1, 60_000)).toEqual([]);
    const later = await queue.claim('a', 1, 60_000, new Date(Date.now() + 61_000));
    expect(later[0]).toMatchObject({ _id: 'flaky', attempts: 1, lastError: 'refused' });
  });
});
