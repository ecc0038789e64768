import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { stringifyJson } from '../../src/fhir/json-text';
import {
  CLAIMS_COLLECTION,
  DECISIONS_COLLECTION,
  HISTORY_COLLECTION,
  INTENTS_COLLECTION,
} from '../../src/store/documents';
import { ClaimTakenError, VersionConflictError } from '../../src/store/journal';
import { ResourceStore } from '../../src/store/resource-store';
import { CRASH_OUTBOX } from '../support/crash-during-commit';
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
    intents: await db.collection(INTENTS_COLLECTION).countDocuments(),
    outbox: await db.collection(CRASH_OUTBOX).find({}).toArray(),
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
    expect(await client.db(dbName).collection(INTENTS_COLLECTION).countDocuments()).toBe(0);
  });

  const seedPatient = () =>
    store.commit([
      {
        type: 'Patient',
        id: 'crash-patient',
        method: 'PUT',
        previous: null,
        resource: { resourceType: 'Patient', active: true },
      },
    ]);
  const crashChild = (at: string) =>
    expect(
      run(process.execPath, [
        '--import',
        'tsx',
        join(__dirname, '..', 'support', 'crash-during-commit.ts'),
        process.env.MONGODB_URI as string,
        dbName,
        at,
      ]),
    ).rejects.toMatchObject({ stderr: '', signal: 'SIGKILL' });
  const clear = async () => {
    for (const name of ['Patient', 'Observation', HISTORY_COLLECTION, INTENTS_COLLECTION, CRASH_OUTBOX]) {
      await client.db(dbName).collection(name).deleteMany({});
    }
  };

  it('finish a commit whose process was killed after it was decided, and show it whole to readers meanwhile', async () => {
    await clear();
    await seedPatient();
    await crashChild('1');

    const crashed = await stateOf();
    expect(crashed.intents).toBe(1);
    // Decided; the new Observation is in place (creates go first), the Patient's update is not.
    expect(crashed.observation?.v).toBe(1);
    expect(crashed.patient?.v).toBe(1);
    expect(crashed.outbox).toEqual([]);
    // A reader does not see the commit half-done: it waits for the commit to settle, finishing it itself.
    const reader = new ResourceStore(client.db(dbName), { serverId: 'a-reader' });
    const patientRead = await reader.read('Patient', 'crash-patient', reader.readView());
    const observationRead = await reader.read('Observation', 'crash-obs', reader.readView());
    expect(patientRead?.v).toBe(2);
    expect(observationRead?.v).toBe(1);
    expect(await reader.vread('Observation', 'crash-obs', 1)).not.toBeNull();
    const done = await stateOf();
    expect(done.patient?.v).toBe(2);
    expect(done.patient?.resource).toMatchObject({ active: false });
    expect(done.patient?.nt).toEqual([{ p: '/extension/0/valueDecimal', t: '1.50' }]);
    expect(stringifyJson(patientRead?.resource)).toContain('"valueDecimal":1.50');
    expect(done.intents).toBe(0);
    // The commit's outbox document is written by whoever finishes it.
    expect(done.outbox).toEqual([{ _id: 'crash-event', about: 'Patient/crash-patient' }]);
    expect(done.history.map((h) => h._id)).toEqual([
      'Observation/crash-obs/1',
      'Patient/crash-patient/1',
      'Patient/crash-patient/2',
    ]);
  });

  it('discard a commit whose process was killed before it was decided, at once when its server restarts', async () => {
    await clear();
    await seedPatient();
    const before = await stateOf();
    await crashChild('decision');
    const crashed = await stateOf();
    expect(crashed.intents).toBe(1);
    // Its versions are written but invisible, and the current documents are untouched.
    expect(crashed.patient?.v).toBe(1);
    expect(await store.vread('Patient', 'crash-patient', 2)).toBeNull();
    expect(await store.history({ type: 'Patient', id: 'crash-patient', count: 10 })).toHaveLength(1);

    // Another server leaves it alone while the crashed one's heartbeat is fresh...
    expect(await new ResourceStore(client.db(dbName), { serverId: 'another-server' }).journal.recover()).toBe(0);
    // ...and the crashed server, restarted under its SERVER_ID, recovers it without waiting for a lease.
    expect(await new ResourceStore(client.db(dbName), { serverId: 'crash-test-server' }).journal.recover()).toBe(1);
    expect(await stateOf()).toEqual(before);
    expect(before.outbox).toEqual([]);
  });
});

describe('documents written with a commit', () => {
  const outbox = () => client.db(dbName).collection<{ _id: string }>('_test_side_documents');
  const write = (id: string, side: { _id: string; mode: 'insert-once' | 'upsert'; fields: Record<string, unknown> }) =>
    store.commit(
      [{ type: 'Patient', id, method: 'PUT', previous: null, resource: { resourceType: 'Patient' } }],
      undefined,
      [{ collection: '_test_side_documents', ...side }],
    );

  it('insert once, leave a document its consumer changed, and set the fields of an upserted one', async () => {
    await write('side-1', { _id: 'event', mode: 'insert-once', fields: { state: 'pending' } });
    await outbox().updateOne({ _id: 'event' }, { $set: { state: 'delivered' } });
    await write('side-2', { _id: 'event', mode: 'insert-once', fields: { state: 'pending' } });
    expect(await outbox().findOne({ _id: 'event' })).toEqual({ _id: 'event', state: 'delivered' });

    await write('side-3', { _id: 'queued', mode: 'upsert', fields: { token: 'a' } });
    await outbox().updateOne({ _id: 'queued' }, { $set: { lease: 1 } });
    await write('side-4', { _id: 'queued', mode: 'upsert', fields: { token: 'b' } });
    expect(await outbox().findOne({ _id: 'queued' })).toEqual({ _id: 'queued', token: 'b', lease: 1 });
  });

  it('are not written by a commit that fails', async () => {
    await expect(write('side-1', { _id: 'never', mode: 'insert-once', fields: {} })).rejects.toThrow(
      /changed by another request/,
    );
    expect(await outbox().findOne({ _id: 'never' })).toBeNull();
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

describe('group commit', () => {
  const create = (id: string) => ({
    type: 'Patient',
    id,
    method: 'PUT' as const,
    previous: null,
    resource: { resourceType: 'Patient' as const, active: true },
  });

  it('commits what arrives while others run together, each stored whole', async () => {
    const since = new Date();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.commit([create(`group-${i}`), create(`group-${i}-b`)])),
    );
    for (let i = 0; i < 20; i++) {
      expect((await store.read('Patient', `group-${i}`))?.v).toBe(1);
      expect((await store.read('Patient', `group-${i}-b`))?.v).toBe(1);
    }
    // One decision per group: fewer than the 20 commits when any of them went together.
    const decisions = await client
      .db(dbName)
      .collection(DECISIONS_COLLECTION)
      .countDocuments({ decidedAt: { $gte: since }, state: 'committed' });
    expect(decisions).toBeGreaterThan(0);
    expect(decisions).toBeLessThan(20);
  });

  it('gives a conflict to the one commit that has it, with its own index, and stores the others', async () => {
    const [held] = await store.commit([create('group-held')]);
    const attempts = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        store.commit(
          i === 6
            ? [create('group-stale-first'), { ...create('group-held'), previous: { ...held, v: 5 } }]
            : [create(`group-ok-${i}`)],
        ),
      ),
    );
    const failed = attempts.flatMap((a, i) => (a.status === 'rejected' ? [[i, a.reason as unknown]] : []));
    expect(failed).toHaveLength(1);
    expect(failed[0][0]).toBe(6);
    expect(failed[0][1]).toBeInstanceOf(VersionConflictError);
    expect((failed[0][1] as VersionConflictError).index).toBe(1);
    expect(await store.read('Patient', 'group-stale-first')).toBeNull();
    for (const i of [0, 1, 2, 3, 4, 5, 7, 8, 9]) expect((await store.read('Patient', `group-ok-${i}`))?.v).toBe(1);
    expect(await client.db(dbName).collection(INTENTS_COLLECTION).countDocuments()).toBe(0);
  });
});
