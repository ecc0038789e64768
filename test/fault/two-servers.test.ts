// Two server processes on one engine, as behind a load balancer: racing conditional creates, racing
// If-Match updates and racing plain updates spread over both must behave as on one server, and a
// SearchParameter created on one process must be searchable on the other within 5 s of its reindex.
import type { Bundle, MedicationRequest, Parameters, Patient, SearchParameter } from '@medplum/fhirtypes';
import { bundleOf, describeAnswer, fhir, FhirAnswer } from './fhir-client';
import { FaultCluster, sleep } from './harness';

const RUN = Date.now().toString(36);
const IDENTIFIER_SYSTEM = 'https://meds-fhir.test/two-servers';

let cluster: FaultCluster;

/** The base of the server the i-th racer talks to: alternately one and the other. */
const baseFor = (i: number) => cluster.servers[i % cluster.servers.length].base;

/** Sends `n` requests at once, spread over both servers. */
function race(n: number, send: (base: string, i: number) => Promise<FhirAnswer>): Promise<FhirAnswer[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => send(baseFor(i), i)));
}

/** How many answers had each status ("0": no answer at all). */
function statusCounts(answers: FhirAnswer[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of answers) counts[String(a.status)] = (counts[String(a.status)] ?? 0) + 1;
  return counts;
}

async function createPatient(patient: Patient): Promise<Patient> {
  const created = await fhir(cluster.servers[0].base, 'POST', 'Patient', { body: patient });
  if (created.status !== 201 || created.body?.resourceType !== 'Patient') {
    throw new Error(`create: ${describeAnswer(created)}`);
  }
  return created.body;
}

async function historyVersions(base: string, path: string): Promise<string[]> {
  const bundle = bundleOf(await fhir(base, 'GET', `${path}/_history?_count=100`));
  return (bundle.entry ?? []).map((e) => e.resource?.meta?.versionId ?? '?');
}

/** Polls until `probe` is true or `ms` have passed; returns the time it took, or undefined. */
async function within(ms: number, probe: () => Promise<boolean>): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started <= ms) {
    if (await probe()) return Date.now() - started;
    await sleep(100);
  }
  return undefined;
}

function noted(text: string): MedicationRequest {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    subject: { reference: 'Patient/two-servers-nobody' },
    medicationCodeableConcept: { text: 'buprenorphine' },
    note: [{ text }],
  };
}

async function reindexStatus(base: string, id: string): Promise<string | undefined> {
  const answer = await fhir(base, 'GET', `SearchParameter/${id}/$reindex-status`);
  const parameters = answer.body?.resourceType === 'Parameters' ? (answer.body as Parameters) : undefined;
  return parameters?.parameter?.find((p) => p.name === 'status')?.valueCode;
}

async function idsFound(base: string, query: string): Promise<string[] | string> {
  const answer = await fhir(base, 'GET', query);
  if (answer.status !== 200) return describeAnswer(answer);
  return ((answer.body as Bundle).entry ?? []).map((e) => e.resource?.id ?? '?').sort();
}

describe('two server processes on one engine', () => {
  beforeAll(async () => {
    cluster = await FaultCluster.start('fault_two', [{ serverId: 'two-1' }, { serverId: 'two-2' }]);
  }, 120_000);

  afterAll(async () => {
    console.log(cluster?.report());
    await cluster?.stop();
  }, 60_000);

  it('20 racing conditional creates make one resource, and everyone is answered with it', async () => {
    const condition = `identifier=${encodeURIComponent(`${IDENTIFIER_SYSTEM}|mrn-${RUN}`)}`;
    const patient: Patient = {
      resourceType: 'Patient',
      identifier: [{ system: IDENTIFIER_SYSTEM, value: `mrn-${RUN}` }],
      name: [{ family: 'Racer' }],
    };
    const answers = await race(20, (base) =>
      fhir(base, 'POST', 'Patient', { body: patient, headers: { 'If-None-Exist': condition } }),
    );
    const ids = new Set(answers.map((a) => a.body?.id));
    const totals = await Promise.all(
      cluster.servers.map(
        async (s) => bundleOf(await fhir(s.base, 'GET', `Patient?${condition}&_summary=count`)).total,
      ),
    );
    expect({ statuses: statusCounts(answers), ids: ids.size, totals }).toEqual({
      statuses: { '201': 1, '200': 19 },
      ids: 1,
      totals: [1, 1],
    });
  });

  it('10 racing If-Match updates of one version: exactly one 200, nine 412', async () => {
    const created = await createPatient({ resourceType: 'Patient', name: [{ family: 'Locked' }] });
    const path = `Patient/${created.id}`;
    const answers = await race(10, (base, i) =>
      fhir(base, 'PUT', path, {
        body: { ...created, name: [{ family: 'Locked', given: [`writer-${i}`] }] },
        headers: { 'If-Match': 'W/"1"' },
      }),
    );
    const winner = answers.find((a) => a.status === 200)?.body as Patient | undefined;
    const finals = await Promise.all(cluster.servers.map((s) => fhir(s.base, 'GET', path)));
    expect({
      statuses: statusCounts(answers),
      finalVersions: finals.map((f) => f.body?.meta?.versionId),
      finalGiven: finals.map((f) => (f.body as Patient | undefined)?.name?.[0].given?.[0]),
      history: await historyVersions(cluster.servers[1].base, path),
    }).toEqual({
      statuses: { '200': 1, '412': 9 },
      finalVersions: ['2', '2'],
      finalGiven: [winner?.name?.[0].given?.[0], winner?.name?.[0].given?.[0]],
      history: ['2', '1'],
    });
  });

  it('10 racing updates without If-Match all succeed, as versions 2..11', async () => {
    const created = await createPatient({ resourceType: 'Patient', name: [{ family: 'Unlocked' }] });
    const path = `Patient/${created.id}`;
    const answers = await race(10, (base, i) =>
      fhir(base, 'PUT', path, { body: { ...created, name: [{ family: 'Unlocked', given: [`writer-${i}`] }] } }),
    );
    const versions = answers.map((a) => Number(a.body?.meta?.versionId)).sort((a, b) => a - b);
    const finals = await Promise.all(cluster.servers.map((s) => fhir(s.base, 'GET', path)));
    expect({
      statuses: statusCounts(answers),
      refusals: [...new Set(answers.filter((a) => a.status !== 200).map(describeAnswer))],
      versions,
      finalVersions: finals.map((f) => f.body?.meta?.versionId),
      history: await historyVersions(cluster.servers[0].base, path),
    }).toEqual({
      statuses: { '200': 10 },
      refusals: [],
      versions: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
      finalVersions: ['11', '11'],
      history: ['11', '10', '9', '8', '7', '6', '5', '4', '3', '2', '1'],
    });
  });

  it('a SearchParameter created on one process is searchable on the other within 5 s of its reindex', async () => {
    const [one, two] = cluster.servers;
    const code = `fault-note-${RUN}`;
    const before = await fhir(two.base, 'POST', 'MedicationRequest', { body: noted(`stored before ${RUN}`) });
    expect(describeAnswer(before)).toBe('201');
    const definition: SearchParameter = {
      resourceType: 'SearchParameter',
      id: `fault-note-${RUN}`,
      url: `https://meds-fhir.test/SearchParameter/fault-note-${RUN}`,
      name: 'FaultNote',
      status: 'active',
      description: 'Prescriptions by the text of their notes',
      code,
      base: ['MedicationRequest'],
      type: 'string',
      expression: 'MedicationRequest.note.text',
    };
    const stored = await fhir(one.base, 'PUT', `SearchParameter/${definition.id}`, { body: definition });
    expect(describeAnswer(stored)).toMatch(/^20[01]$/);
    const reindexed = await within(
      60_000,
      async () => (await reindexStatus(one.base, definition.id ?? '')) === 'completed',
    );
    expect(reindexed).toBeDefined();

    const query = `MedicationRequest?${code}=stored`;
    let lastSeen: string[] | string = [];
    // Measured up to 10 s, so a failure says how late (or never) the other process caught up.
    const visibleMs = await within(10_000, async () => {
      lastSeen = await idsFound(two.base, query);
      return Array.isArray(lastSeen) && lastSeen.includes(before.body?.id ?? '');
    });
    // A write on the second process after that is indexed by it and found through both.
    const after = await fhir(two.base, 'POST', 'MedicationRequest', { body: noted(`stored after ${RUN}`) });
    const both = [before.body?.id, after.body?.id].sort();
    expect({
      visibleWithin5s: visibleMs !== undefined && visibleMs <= 5_000,
      visibleMs,
      lastSeen,
      foundOnOne: await idsFound(one.base, query),
      foundOnTwo: await idsFound(two.base, query),
    }).toEqual({
      visibleWithin5s: true,
      visibleMs: expect.any(Number),
      lastSeen: [before.body?.id],
      foundOnOne: both,
      foundOnTwo: both,
    });
  }, 120_000);
});
