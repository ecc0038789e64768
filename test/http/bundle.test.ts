import type { Bundle, BundleEntry, MedicationRequest, Observation, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { createResource, expectOutcome, FHIR_JSON, startTestServer, TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename, { maxBundleEntries: 150 });
});
afterAll(async () => server.close());

const postBundle = (bundle: Bundle) => request(server.app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle);

async function countOf(type: string): Promise<number> {
  return server.running.connection.db.collection(type).countDocuments({ deleted: { $ne: true } });
}

function observation(patientRef: string, i: number): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { text: `score ${i}` },
    subject: { reference: patientRef },
    valueInteger: i,
  };
}

describe('transaction', () => {
  it('creates every entry and rewrites urn:uuid references to the assigned ids, also in contained resources', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:5b3f7a1e-0000-4000-8000-000000000001',
          resource: { resourceType: 'Patient', name: [{ family: 'Transaction' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          fullUrl: 'urn:uuid:5b3f7a1e-0000-4000-8000-000000000002',
          resource: {
            resourceType: 'MedicationRequest',
            status: 'active',
            intent: 'order',
            contained: [
              {
                resourceType: 'Provenance',
                id: 'p',
                target: [{ reference: 'urn:uuid:5b3f7a1e-0000-4000-8000-000000000001' }],
                recorded: '2026-01-01T00:00:00Z',
                agent: [{ who: { display: 'EHR' } }],
              },
            ],
            medicationCodeableConcept: { text: 'sertraline 50 mg' },
            subject: { reference: 'urn:uuid:5b3f7a1e-0000-4000-8000-000000000001' },
            eventHistory: [{ reference: '#p' }],
          } as MedicationRequest,
          request: { method: 'POST', url: 'MedicationRequest' },
        },
      ],
    };
    const response = await postBundle(bundle);
    expect(response.status).toBe(200);
    const result = response.body as Bundle;
    expect(result.type).toBe('transaction-response');
    expect(result.entry?.map((e) => e.response?.status)).toEqual(['201 Created', '201 Created']);
    const patientId = (result.entry?.[0].resource as Patient).id;
    const rx = result.entry?.[1].resource as MedicationRequest;
    expect(rx.subject?.reference).toBe(`Patient/${patientId}`);
    expect(JSON.stringify(rx.contained)).toContain(`Patient/${patientId}`);
    expect(result.entry?.[1].response?.location).toMatch(new RegExp(`/MedicationRequest/${rx.id}/_history/1$`));
    expect((await request(server.app).get(`/fhir/MedicationRequest/${rx.id}`)).status).toBe(200);
  });

  it("rewrites references to a PUT entry's urn:uuid fullUrl to the resource it writes", async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:5b3f7a1e-0000-4000-8000-0000000000a1',
          resource: { resourceType: 'Patient', id: 'put-entry-patient', name: [{ family: 'Put' }] },
          request: { method: 'PUT', url: 'Patient/put-entry-patient' },
        },
        {
          resource: {
            resourceType: 'MedicationRequest',
            status: 'active',
            intent: 'order',
            medicationCodeableConcept: { text: 'buprenorphine 8 mg' },
            subject: { reference: 'urn:uuid:5b3f7a1e-0000-4000-8000-0000000000a1' },
          } as MedicationRequest,
          request: { method: 'POST', url: 'MedicationRequest' },
        },
      ],
    };
    const response = await postBundle(bundle);
    expect(response.status).toBe(200);
    const rx = (response.body as Bundle).entry?.[1].resource as MedicationRequest;
    expect(rx.subject?.reference).toBe('Patient/put-entry-patient');
    const included = await request(server.app).get(
      `/fhir/MedicationRequest?_id=${rx.id}&_include=MedicationRequest:subject`,
    );
    expect((included.body as Bundle).entry?.map((e) => e.resource?.resourceType)).toEqual([
      'MedicationRequest',
      'Patient',
    ]);
  });

  it('stores nothing when the last of 100 entries fails, and names that entry', async () => {
    const patientsBefore = await countOf('Patient');
    const observationsBefore = await countOf('Observation');
    const historyBefore = (await request(server.app).get('/fhir/_history?_count=1000')).body.entry.length;
    const searchTotal = async (query: string) =>
      (await request(server.app).get(`/fhir/${query}&_summary=count`)).body.total as number;
    const observationsFound = await searchTotal('Observation?code:text=score');
    const entries: BundleEntry[] = [
      {
        fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000000',
        resource: { resourceType: 'Patient' },
        request: { method: 'POST', url: 'Patient' },
      },
      ...Array.from({ length: 98 }, (_, i) => ({
        resource: observation('urn:uuid:aaaaaaaa-0000-4000-8000-000000000000', i),
        request: { method: 'POST' as const, url: 'Observation' },
      })),
      {
        resource: { resourceType: 'Patient', id: 'other-id' },
        request: { method: 'PUT', url: 'Patient/mismatched-id' },
      },
    ];
    const response = await postBundle({ resourceType: 'Bundle', type: 'transaction', entry: entries });
    expectOutcome(response, 400, { expression: 'Bundle.entry[99]' });
    expect(await countOf('Patient')).toBe(patientsBefore);
    expect(await countOf('Observation')).toBe(observationsBefore);
    expect(await searchTotal('Observation?code:text=score')).toBe(observationsFound);
    expect((await request(server.app).get('/fhir/_history?_count=1000')).body.entry.length).toBe(historyBefore);
  });

  it('processes DELETE, then POST, then PUT, then GET, whatever the order of the entries', async () => {
    const doomed = await createResource<Patient>(server.app, { resourceType: 'Patient', name: [{ family: 'Doomed' }] });
    const response = await postBundle({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'GET', url: `Patient/${doomed.id}` } },
        {
          resource: { resourceType: 'Patient', id: 'ordered-put' },
          request: { method: 'PUT', url: 'Patient/ordered-put' },
        },
        { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'DELETE', url: `Patient/${doomed.id}` } },
      ],
    });
    expect(response.status).toBe(200);
    const statuses = (response.body as Bundle).entry?.map((e) => e.response?.status);
    // The GET ran last, after the DELETE in the same transaction.
    expect(statuses).toEqual(['410 Gone', '201 Created', '201 Created', '200 OK']);
  });

  it('refuses a Bundle over the entry limit with 413, and a wrong Bundle type with 400', async () => {
    const entries = Array.from({ length: 151 }, () => ({
      resource: { resourceType: 'Patient' } as Patient,
      request: { method: 'POST' as const, url: 'Patient' },
    }));
    expectOutcome(await postBundle({ resourceType: 'Bundle', type: 'transaction', entry: entries }), 413);
    expectOutcome(await postBundle({ resourceType: 'Bundle', type: 'collection', entry: [] }), 400, {
      expression: 'Bundle.type',
    });
    expectOutcome(
      await postBundle({ resourceType: 'Bundle', type: 'batch', entry: [{ resource: { resourceType: 'Patient' } }] }),
      400,
      {
        expression: 'Bundle.entry[0].request.method',
      },
    );
  });
});

describe('batch', () => {
  it('processes entries independently and reports each outcome in order', async () => {
    const existing = await createResource<Patient>(server.app, { resourceType: 'Patient' });
    const response = await postBundle({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          resource: { resourceType: 'Patient', name: [{ family: 'Batch' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        { request: { method: 'GET', url: 'Patient/not-there' } },
        { request: { method: 'GET', url: `Patient/${existing.id}` } },
        { resource: { resourceType: 'Patient', id: 'x' }, request: { method: 'PUT', url: 'Patient/y' } },
      ],
    });
    expect(response.status).toBe(200);
    const entries = (response.body as Bundle).entry ?? [];
    expect((response.body as Bundle).type).toBe('batch-response');
    expect(entries.map((e) => e.response?.status)).toEqual([
      '201 Created',
      '404 Not Found',
      '200 OK',
      '400 Bad Request',
    ]);
    expect(entries[0].response?.etag).toBe('W/"1"');
    expect(entries[0].response?.location).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    expect(entries[1].response?.outcome?.issue?.[0].code).toBe('not-found');
    expect((entries[2].resource as Patient).id).toBe(existing.id);
  });
});

describe('batch entries run side by side where they are independent (BATCH_CONCURRENCY)', () => {
  const patient = (family: string, id?: string): Patient => ({
    resourceType: 'Patient',
    ...(id ? { id } : {}),
    name: [{ family }],
  });

  it('answers each entry in its place, as one after another would', async () => {
    expect(server.running.context.config.batchConcurrency).toBeGreaterThan(1);
    const entry = (i: number): BundleEntry =>
      i % 2
        ? { resource: patient(`Side${i}`), request: { method: 'POST', url: 'Patient' } }
        : { resource: patient(`Side${i}`, `side-${i}`), request: { method: 'PUT', url: `Patient/side-${i}` } };
    const response = await postBundle({
      resourceType: 'Bundle',
      type: 'batch',
      entry: Array.from({ length: 40 }, (_, i) => entry(i)),
    });
    expect(response.status).toBe(200);
    const entries = (response.body as Bundle).entry ?? [];
    expect(entries.map((e) => e.response?.status)).toEqual(Array(40).fill('201 Created'));
    expect(entries.map((e) => (e.resource as Patient).name?.[0].family)).toEqual(
      Array.from({ length: 40 }, (_, i) => `Side${i}`),
    );
    for (const [i, e] of entries.entries()) {
      const read = await request(server.app).get(`/fhir/Patient/${(e.resource as Patient).id}`);
      expect([i, (read.body as Patient).name?.[0].family]).toEqual([i, `Side${i}`]);
    }
  });

  it('writes one resource in the order of its entries, among other writes', async () => {
    const entries: BundleEntry[] = [];
    for (const family of ['First', 'Second', 'Third']) {
      entries.push({ resource: patient(family, 'in-order'), request: { method: 'PUT', url: 'Patient/in-order' } });
      entries.push({ resource: patient(`Beside${family}`), request: { method: 'POST', url: 'Patient' } });
    }
    const response = await postBundle({ resourceType: 'Bundle', type: 'batch', entry: entries });
    const answered = (response.body as Bundle).entry ?? [];
    expect([0, 2, 4].map((i) => answered[i].response?.etag)).toEqual(['W/"1"', 'W/"2"', 'W/"3"']);
    const history = await request(server.app).get('/fhir/Patient/in-order/_history');
    expect(((history.body as Bundle).entry ?? []).map((e) => (e.resource as Patient).name?.[0].family)).toEqual([
      'Third',
      'Second',
      'First',
    ]);
  });

  it('creates once for two conditional creates of one identifier, however the condition is spelled', async () => {
    const identified = (): Patient => ({
      resourceType: 'Patient',
      identifier: [{ system: 'urn:batch-test', value: 'twice' }],
      birthDate: '1990-01-01',
    });
    const response = await postBundle({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          resource: identified(),
          request: {
            method: 'POST',
            url: 'Patient',
            ifNoneExist: 'identifier=urn:batch-test|twice&birthdate=1990-01-01',
          },
        },
        {
          resource: identified(),
          request: {
            method: 'POST',
            url: 'Patient',
            ifNoneExist: 'birthdate=1990-01-01&identifier=urn:batch-test|twice',
          },
        },
      ],
    });
    const answered = (response.body as Bundle).entry ?? [];
    expect(answered.map((e) => e.response?.status)).toEqual(['201 Created', '200 OK']);
    const found = await request(server.app).get('/fhir/Patient?identifier=urn:batch-test|twice');
    expect((found.body as Bundle).total).toBe(1);
  });

  it('lets a read see the writes listed before it', async () => {
    const response = await postBundle({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: patient('Written', 'read-after'), request: { method: 'PUT', url: 'Patient/read-after' } },
        { request: { method: 'GET', url: 'Patient/read-after' } },
        { request: { method: 'GET', url: 'Patient?_id=read-after' } },
      ],
    });
    const answered = (response.body as Bundle).entry ?? [];
    expect(answered.map((e) => e.response?.status)).toEqual(['201 Created', '200 OK', '200 OK']);
    expect((answered[1].resource as Patient).name?.[0].family).toBe('Written');
    expect((answered[2].resource as Bundle).total).toBe(1);
  });

  it('answers 200 with each failure in its own entry while its neighbours are stored', async () => {
    const before = await countOf('Patient');
    const response = await postBundle({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: patient('Kept1'), request: { method: 'POST', url: 'Patient' } },
        {
          resource: { resourceType: 'Patient', birthDate: 'not a date' } as Patient,
          request: { method: 'POST', url: 'Patient' },
        },
        { resource: patient('Kept2'), request: { method: 'POST', url: 'Patient' } },
        { resource: patient('Mismatch', 'a'), request: { method: 'PUT', url: 'Patient/b' } },
      ],
    });
    const answered = (response.body as Bundle).entry ?? [];
    expect(answered.map((e) => e.response?.status.slice(0, 3))).toEqual(['201', '422', '201', '400']);
    expect(await countOf('Patient')).toBe(before + 2);
  });
});
