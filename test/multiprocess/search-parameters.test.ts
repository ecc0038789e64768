import type { Bundle, MedicationRequest, Parameters, SearchParameter } from '@medplum/fhirtypes';
import request from 'supertest';
import { REINDEX_JOBS_COLLECTION, type ReindexJob } from '../../src/search/reindex-log';
import { FHIR_JSON } from '../support/server';
import { startCluster, within, type ClusterMember } from './cluster';

// Three server processes (contexts) on one database; C is "crashed" by one test.
let a: ClusterMember;
let b: ClusterMember;
let c: ClusterMember;
let close: () => Promise<void>;
const SEEDED = 400;

const prescription = (id: string, note: string): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  id,
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
  medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1010606' }] },
  note: [{ text: note }],
});

beforeAll(async () => {
  // A lease longer than the cluster's 2 s. In one full CI run the crash test below never saw C
  // scanning; a live C taken for dead on a loaded machine, its reindex taken from it, is one way.
  const cluster = await startCluster(__filename, 3, { journalLeaseMs: 6000 });
  [a, b, c] = cluster.members;
  close = cluster.close;
  for (let start = 0; start < SEEDED; start += 100) {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: Array.from({ length: 100 }, (_, i) => ({
        resource: prescription(`seed-${start + i}`, 'seeded before'),
        request: { method: 'PUT' as const, url: `MedicationRequest/seed-${start + i}` },
      })),
    };
    await request(a.app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle).expect(200);
  }
}, 120_000);
afterAll(async () => close());

const definition = (id: string, code: string): SearchParameter => ({
  resourceType: 'SearchParameter',
  id,
  url: `http://meds-fhir.test/SearchParameter/${id}`,
  name: code,
  status: 'active',
  description: 'Prescriptions by the words of their notes',
  code,
  base: ['MedicationRequest'],
  type: 'string',
  expression: 'MedicationRequest.note.text',
});

const put = (member: ClusterMember, resource: SearchParameter | MedicationRequest) =>
  request(member.app)
    .put(`/fhir/${resource.resourceType}/${resource.id}`)
    .set('Content-Type', FHIR_JSON)
    .send(resource);

const status = async (member: ClusterMember, id: string) => {
  const response = await request(member.app).get(`/fhir/SearchParameter/${id}/$reindex-status`);
  expect(response.status).toBe(200);
  return Object.fromEntries(
    ((response.body as Parameters).parameter ?? []).map((p) => [p.name, p.valueCode ?? p.valueInteger]),
  );
};

const total = async (member: ClusterMember, query: string): Promise<number | undefined> => {
  const response = await request(member.app).get(`/fhir/MedicationRequest?${query}&_total=accurate&_count=1`);
  return response.status === 200 ? (response.body as Bundle).total : undefined;
};

describe('a runtime SearchParameter across processes', () => {
  it('created on A is searchable on B after its reindex, with the values B wrote during the rollout', async () => {
    expect((await put(a, definition('note-word', 'note-word'))).status).toBe(201);
    // B writes at once, before its feed has brought it the definition, and goes on until the rollout
    // is over: the reindex must not start before B extracts the parameter itself.
    let written = 0;
    const writes = (async () => {
      for (;;) {
        expect((await put(b, prescription(`during-${written}`, 'written during rollout'))).status).toBe(201);
        written++;
        if (written >= 20 && (await status(b, 'note-word')).status === 'completed') return;
      }
    })();
    await writes;
    for (let i = 0; i < 5; i++) {
      expect((await put(b, prescription(`after-${i}`, 'written during rollout'))).status).toBe(201);
      written++;
    }
    expect(await total(b, 'note-word=written')).toBe(written);
    expect((await status(a, 'note-word')).status).toBe('completed');
    expect(await total(a, 'note-word=written')).toBe(written);
    expect(await total(b, 'note-word=seeded')).toBe(SEEDED);
    // $reindex-status reads the job in the database: the same on every process.
    const onA = await status(a, 'note-word');
    expect(onA.status).toBe('completed');
    expect(await status(b, 'note-word')).toEqual(onA);
    expect(await status(c, 'note-word')).toEqual(onA);
    expect(Number(onA.done)).toBeGreaterThanOrEqual(SEEDED);
  }, 180_000);

  it('stops being searchable on B once deleted on A', async () => {
    await request(a.app).delete('/fhir/SearchParameter/note-word').expect(200);
    await within(5000, async () => (await total(b, 'note-word=written')) === undefined);
    expect((await request(b.app).get('/fhir/MedicationRequest?note-word=written')).status).toBe(400);
  });

  it('a reindex whose process crashed is resumed by another process where it stopped', async () => {
    const jobs = c.running.connection.db.collection<ReindexJob>(REINDEX_JOBS_COLLECTION);
    expect((await put(c, definition('note-crash', 'note-crash'))).status).toBe(201);
    const cIncarnation = c.running.context.store.processes.incarnation;
    // Crash C once its reindex has made progress: its connection goes, its heartbeat stops being renewed.
    let doneAtCrash = 0;
    let totalAtCrash = 0;
    let seen: ReindexJob | null = null;
    await within(
      60_000,
      async () => {
        const job = (seen = await jobs.findOne({ _id: 'note-crash' }));
        const running = job?.state === 'scanning' && job.owner?.incarnation === cIncarnation;
        [doneAtCrash, totalAtCrash] = running ? [job.done, job.total] : [0, 0];
        return doneAtCrash > 0;
      },
      10,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: C (${cIncarnation}) never seen scanning; last job ${JSON.stringify(seen)}`);
    });
    await c.running.connection.close();
    // Part of the way through, not finished.
    expect(doneAtCrash).toBeLessThan(totalAtCrash);

    // Another process takes it over once C's heartbeat is older than the lease, and goes on from there.
    const observed: number[] = [];
    const db = a.running.connection.db;
    await within(
      90_000,
      async () => {
        const job = await db.collection<ReindexJob>(REINDEX_JOBS_COLLECTION).findOne({ _id: 'note-crash' });
        if (job && job.owner?.incarnation !== cIncarnation) observed.push(job.done);
        return job?.state === 'done';
      },
      20,
    );
    const job = await db.collection<ReindexJob>(REINDEX_JOBS_COLLECTION).findOne({ _id: 'note-crash' });
    expect(job?.owner?.incarnation).not.toBe(cIncarnation);
    // Resumed, not restarted: the count never went back below where C stopped.
    expect(Math.min(...observed)).toBeGreaterThanOrEqual(doneAtCrash);
    // A process that answers "completed" searches on the parameter from then on.
    for (const member of [a, b]) expect((await status(member, 'note-crash')).status).toBe('completed');
    expect(await total(a, 'note-crash=seeded')).toBe(SEEDED);
    expect(await total(b, 'note-crash=seeded')).toBe(SEEDED);
  }, 180_000);
});
