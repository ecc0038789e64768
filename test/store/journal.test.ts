import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { CLAIMS_COLLECTION, HISTORY_COLLECTION, JOURNAL_COLLECTION } from '../../src/store/documents';
import { ClaimTakenError, VersionConflictError } from '../../src/store/journal';
import { ResourceStore } from '../../src/store/resource-store';
import { databaseNameFor } from '../support/server';

const run = promisify(execFile);
let client: MongoClient;
let store: ResourceStore;
const dbName = databaseNameFor(__filename);

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  await client.db(dbName).dropDatabase();
  store = new ResourceStore(client.db(dbName));
  await store.ensureIndexes(['Patient', 'Observation']);
});
afterAll(async () => {
  await client.db(dbName).dropDatabase();
  await client.close();
});

async function stateOf() {
  const db = client.db(dbName);
  return {
    patient: await db.collection('Patient').findOne({ _id: 'crash-patient' as never }),
    observation: await db.collection('Observation').findOne({ _id: 'crash-obs' as never }),
    history: await db.collection(HISTORY_COLLECTION).find({}).sort({ _id: 1 }).toArray(),
    journal: await db.collection(JOURNAL_COLLECTION).countDocuments(),
  };
}

describe('journaled commits', () => {
  it('undo everything when a later write of the same commit fails', async () => {
    const [patient] = await store.commit([
      {
        type: 'Patient',
        id: 'undo-p',
        method: 'PUT',
        previous: null,
        resource: { resourceType: 'Patient', active: true },
      },
    ]);
    // The second write expects a version that is not current, so the commit must fail as a whole.
    const stale = { ...patient, v: 7 };
    await expect(
      store.commit([
        {
          type: 'Observation',
          id: 'undo-o',
          method: 'PUT',
          previous: null,
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } },
        },
        {
          type: 'Patient',
          id: 'undo-p',
          method: 'PUT',
          previous: stale,
          resource: { resourceType: 'Patient', active: false },
        },
      ]),
    ).rejects.toThrow(/changed by another request/);
    expect(await store.read('Observation', 'undo-o')).toBeNull();
    expect((await store.read('Patient', 'undo-p'))?.resource).toEqual(patient.resource);
    expect(await store.vread('Observation', 'undo-o', 1)).toBeNull();
    expect(await client.db(dbName).collection(JOURNAL_COLLECTION).countDocuments()).toBe(0);
  });

  it('leave all-or-nothing after a process is killed in the middle of a commit and recovery runs', async () => {
    await store.commit([
      {
        type: 'Patient',
        id: 'crash-patient',
        method: 'PUT',
        previous: null,
        resource: { resourceType: 'Patient', active: true },
      },
    ]);
    const before = await stateOf();
    const script = join(__dirname, '..', 'support', 'crash-during-commit.ts');
    await expect(
      run(process.execPath, ['--import', 'tsx', script, process.env.MONGODB_URI as string, dbName, '1']),
    ).rejects.toMatchObject({ stderr: '', signal: 'SIGKILL' });

    const crashed = await stateOf();
    expect(crashed.journal).toBe(1);
    expect(crashed.patient?.v).toBe(2); // the first write landed before the crash

    // A restart runs recovery; only entries older than the lease are undone, so a young one survives a sweep.
    expect(await new ResourceStore(client.db(dbName)).journal.recover(60_000)).toBe(0);
    expect(await new ResourceStore(client.db(dbName)).journal.recover(0)).toBe(1);
    expect(await stateOf()).toEqual(before);
  });
});

describe('conditional-create claims', () => {
  it('let exactly one of many racing commits claim a condition, and are released when a commit is undone', async () => {
    const attempts = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        store.commit([
          {
            type: 'Patient',
            id: `claimant-${i}`,
            method: 'POST',
            previous: null,
            resource: { resourceType: 'Patient', identifier: [{ system: 'urn:mrn', value: '42' }] },
            claims: ['Patient?identifier=urn:mrn|42'],
          },
        ]),
      ),
    );
    const won = attempts.filter((a) => a.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const lost of attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected')) {
      expect(lost.reason).toBeInstanceOf(ClaimTakenError);
    }
    const patients = await client
      .db(dbName)
      .collection('Patient')
      .countDocuments({ _id: { $regex: '^claimant-' } as never });
    expect(patients).toBe(1);

    // A commit that fails after claiming gives the claim back.
    const [existing] = await store.commit([
      { type: 'Patient', id: 'holder', method: 'PUT', previous: null, resource: { resourceType: 'Patient' } },
    ]);
    await expect(
      store.commit([
        {
          type: 'Patient',
          id: 'c1',
          method: 'POST',
          previous: null,
          resource: { resourceType: 'Patient' },
          claims: ['Patient?x=1'],
        },
        {
          type: 'Patient',
          id: 'holder',
          method: 'PUT',
          previous: { ...existing, v: 9 },
          resource: { resourceType: 'Patient' },
        },
      ]),
    ).rejects.toBeInstanceOf(VersionConflictError);
    expect(
      await client
        .db(dbName)
        .collection(CLAIMS_COLLECTION)
        .findOne({ _id: 'Patient?x=1' as never }),
    ).toBeNull();
  });
});
