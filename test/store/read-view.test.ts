import type { Observation } from '@medplum/fhirtypes';
import { MongoClient } from 'mongodb';
import { SERVED_FIELDS, type CurrentDocument } from '../../src/store/documents';
import { ReadConflictError } from '../../src/store/read-view';
import { ResourceStore, type PlannedWrite } from '../../src/store/resource-store';
import { databaseNameFor } from '../support/server';

let client: MongoClient;
let store: ResourceStore;
const dbName = databaseNameFor(__filename);
const COUNT = 40;

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  await client.db(dbName).dropDatabase();
  store = new ResourceStore(client.db(dbName), { serverId: 'read-view-test' });
  await store.ensureIndexes(['Observation']);
});
afterAll(async () => {
  await store.stop();
  await client.db(dbName).dropDatabase();
  await client.close();
});

const observation = (status: Observation['status']): Observation => ({
  resourceType: 'Observation',
  status,
  code: { text: 'urine drug screen' },
});

async function seed(prefix: string): Promise<CurrentDocument[]> {
  return store.commit(
    Array.from({ length: COUNT }, (_, i) => ({
      type: 'Observation',
      id: `${prefix}-${i}`,
      method: 'PUT' as const,
      previous: null,
      resource: observation('preliminary'),
    })),
  );
}

/** One commit updating every seeded Observation to final, slowed so that readers run during its apply. */
/** Set while the slowed commit writes its current documents: reads started then are the ones that matter. */
let applying = false;

async function slowCommit(docs: CurrentDocument[], stepMs: number): Promise<void> {
  const writes: PlannedWrite[] = docs.map((doc) => ({
    type: 'Observation',
    id: doc._id,
    method: 'PUT',
    previous: doc,
    resource: observation('final'),
  }));
  store.journal.afterWriteHook = () => {
    applying = true;
    return new Promise((resolve) => setTimeout(resolve, stepMs));
  };
  try {
    await store.commit(writes);
  } finally {
    applying = false;
    store.journal.afterWriteHook = undefined;
  }
}

const finalOf = (prefix: string) => ({ _id: { $regex: `^${prefix}-` }, 'resource.status': 'final' });

describe('reads during a commit', () => {
  it('count, find and read by id see all of a commit or none of it while its documents are written', async () => {
    const docs = await seed('a');
    const commit = slowCommit(docs, 10);
    const counts: number[] = [];
    const pages: number[] = [];
    const single: string[] = [];
    let running = true;
    let duringApply = 0;
    void commit.finally(() => (running = false));
    // Start reading once the first current document of the commit is in place and others are not.
    while (!applying && running) await new Promise((resolve) => setTimeout(resolve, 1));
    while (running) {
      if (applying) duringApply++;
      counts.push(await store.readView().count<CurrentDocument>('Observation', finalOf('a')));
      pages.push((await store.readView().find<CurrentDocument>('Observation', finalOf('a'))).length);
      const last = await store.read('Observation', `a-${COUNT - 1}`, store.readView());
      single.push((last?.resource as Observation).status);
    }
    await commit;
    expect(duringApply).toBeGreaterThan(0);
    for (const n of [...counts, ...pages]) expect([0, COUNT]).toContain(n);
    // Once a reader saw the commit, every later reader does too.
    expect(counts.indexOf(0) === -1 || counts.lastIndexOf(0) < counts.indexOf(COUNT) || !counts.includes(COUNT)).toBe(
      true,
    );
    expect(single.at(-1)).toBe('final');
  });

  it('make the reads of one request agree, or say so, and agree once run again', async () => {
    const docs = await seed('b');
    const commit = slowCommit(docs, 10);
    let conflicts = 0;
    const agreedTotals: number[] = [];
    let running = true;
    void commit.finally(() => (running = false));
    while (running) {
      // As the dispatcher does: a fresh view per attempt, a few attempts.
      for (let attempt = 1; attempt <= 5; attempt++) {
        const view = store.readView();
        const total = await view.count<CurrentDocument>('Observation', finalOf('b'));
        await new Promise((resolve) => setTimeout(resolve, 15));
        const page = await view.find<CurrentDocument>('Observation', finalOf('b'));
        try {
          await view.validate();
        } catch (error) {
          expect(error).toBeInstanceOf(ReadConflictError);
          conflicts++;
          continue;
        }
        expect(page.length).toBe(total);
        agreedTotals.push(total);
        break;
      }
    }
    await commit;
    expect(agreedTotals.length).toBeGreaterThan(0);
    for (const total of agreedTotals) expect([0, COUNT]).toContain(total);
    expect(conflicts).toBeLessThanOrEqual(agreedTotals.length * 4);
  });
});

describe('a restricted read by id', () => {
  it('answers as the restricted query would, whether the filter is tested in memory or sent', async () => {
    const docs = await seed('restricted');
    // A long list, as a practitioner's compartments are; the filter also looks at the resource.
    const reach = [...Array.from({ length: 50 }, (_, i) => `restricted-${i % 2 === 0 ? i : 999 + i}`)];
    const restriction = { $and: [{ _id: { $in: reach } }, { 'resource.status': { $ne: 'cancelled' } }] };
    const view = store.readView((collection) => (collection === 'Observation' ? restriction : undefined));
    const projections = [undefined, SERVED_FIELDS, { v: 1, ts: 1 }] as const;
    for (const doc of docs.slice(0, 6)) {
      const expected = await client
        .db(dbName)
        .collection<CurrentDocument>('Observation')
        .findOne({ $and: [{ _id: doc._id }, restriction] });
      for (const projection of projections) {
        const read = await view.findOne<CurrentDocument>(
          'Observation',
          { _id: doc._id },
          projection ? { projection } : undefined,
        );
        expect({ id: doc._id, projection, found: read?._id ?? null }).toEqual({
          id: doc._id,
          projection,
          found: expected?._id ?? null,
        });
      }
    }
    // Half of them are reachable, and a projection without the filter's fields still answers right.
    const found = await Promise.all(
      docs
        .slice(0, 6)
        .map((d) => view.findOne<CurrentDocument>('Observation', { _id: d._id }, { projection: { v: 1 } })),
    );
    expect(found.map((d) => d !== null)).toEqual([true, false, true, false, true, false]);
  });
});
