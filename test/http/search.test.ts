import type { Bundle, MedicationRequest, Parameters, Patient, Resource, SearchParameter } from '@medplum/fhirtypes';
import request from 'supertest';
import { createResource, expectOutcome, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

let server: TestServer;
const BASE = 'http://meds-fhir.test/fhir';

const patient = (id: string, family: string, mrn: string): Patient => ({
  resourceType: 'Patient',
  id,
  identifier: [{ system: 'urn:mrn', value: mrn }],
  name: [{ family, given: ['Test'] }],
});

const prescription = (id: string, patientId: string, status: MedicationRequest['status'], authoredOn: string) =>
  ({
    resourceType: 'MedicationRequest',
    id,
    status,
    intent: 'order',
    subject: { reference: `Patient/${patientId}` },
    medicationCodeableConcept: {
      coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1010606' }],
    },
    authoredOn,
  }) as MedicationRequest;

async function put(resource: Resource): Promise<void> {
  const response = await request(server.app)
    .put(`/fhir/${resource.resourceType}/${resource.id}`)
    .set('Content-Type', FHIR_JSON)
    .send(resource);
  expect([200, 201]).toContain(response.status);
}

const ids = (bundle: Bundle, mode = 'match') =>
  (bundle.entry ?? [])
    .filter((e) => e.search?.mode === mode)
    .map((e) => `${e.resource?.resourceType}/${e.resource?.id}`)
    .sort();

const get = (path: string) => request(server.app).get(`/fhir/${path}`);

beforeAll(async () => {
  server = await startTestServer(__filename);
  for (const r of [
    patient('p1', 'Álvarez', 'A1'),
    patient('p2', 'Alvarado', 'A2'),
    patient('p3', 'Brown', 'B3'),
    prescription('rx1', 'p1', 'active', '2024-03-05'),
    prescription('rx2', 'p1', 'completed', '2024-02-10'),
    prescription('rx3', 'p2', 'active', '2024-03-31T23:30:00Z'),
    prescription('rx4', 'p3', 'active', '2024-04-01'),
  ])
    await put(r);
});
afterAll(() => server.close());

describe('search over HTTP', () => {
  it('answers a type search with a searchset Bundle, the total and a self link of the applied parameters', async () => {
    const response = await get('MedicationRequest?patient=Patient/p1&status=active');
    expect(response.status).toBe(200);
    const bundle = response.body as Bundle;
    expect(bundle.type).toBe('searchset');
    expect(bundle.total).toBe(1);
    expect(ids(bundle)).toEqual(['MedicationRequest/rx1']);
    expect(bundle.link?.find((l) => l.relation === 'self')?.url).toBe(
      `${BASE}/MedicationRequest?patient=Patient%2Fp1&status=active`,
    );
    expect(bundle.entry?.[0].fullUrl).toBe(`${BASE}/MedicationRequest/rx1`);
  });

  it('gives the same answer to POST [type]/_search with a form body', async () => {
    const viaGet = await get('Patient?name=alv');
    const viaPost = await request(server.app).post('/fhir/Patient/_search').type('form').send('name=alv');
    expect(viaPost.status).toBe(200);
    expect(ids(viaPost.body as Bundle)).toEqual(ids(viaGet.body as Bundle));
    // accent- and case-insensitive starts-with: Álvarez and Alvarado, not Brown
    expect(ids(viaGet.body as Bundle)).toEqual(['Patient/p1', 'Patient/p2']);
  });

  it('matches a month-precision date search against the whole month', async () => {
    const response = await get('MedicationRequest?authoredon=2024-03');
    expect(ids(response.body as Bundle)).toEqual(['MedicationRequest/rx1', 'MedicationRequest/rx3']);
  });

  it('searches within the Patient compartment', async () => {
    const response = await get('Patient/p1/MedicationRequest?status=completed');
    expect(response.status).toBe(200);
    expect(ids(response.body as Bundle)).toEqual(['MedicationRequest/rx2']);
    expect((response.body as Bundle).link?.[0].url).toBe(`${BASE}/Patient/p1/MedicationRequest?status=completed`);
  });

  it('searches several types at system level with _type', async () => {
    const response = await get('?_type=Patient,MedicationRequest&_id=p3,rx4');
    expect(response.status).toBe(200);
    expect(ids(response.body as Bundle)).toEqual(['MedicationRequest/rx4', 'Patient/p3']);
  });

  it('includes the referenced patients, marked as include', async () => {
    const response = await get('MedicationRequest?status=active&_include=MedicationRequest:subject');
    const bundle = response.body as Bundle;
    expect(ids(bundle)).toEqual(['MedicationRequest/rx1', 'MedicationRequest/rx3', 'MedicationRequest/rx4']);
    expect(ids(bundle, 'include')).toEqual(['Patient/p1', 'Patient/p2', 'Patient/p3']);
  });

  it('pages with next links that the server accepts back, and refuses an altered token', async () => {
    const first = (await get('MedicationRequest?_count=2&_sort=authoredon')).body as Bundle;
    expect(ids(first)).toEqual(['MedicationRequest/rx1', 'MedicationRequest/rx2']);
    const next = first.link?.find((l) => l.relation === 'next')?.url as string;
    expect(next).toContain(`${BASE}/MedicationRequest?`);
    const second = await get(next.slice(BASE.length + 1));
    expect(second.status).toBe(200);
    expect(ids(second.body as Bundle)).toEqual(['MedicationRequest/rx3', 'MedicationRequest/rx4']);
    const tampered = next.replace(/_cursor=([^&]+)/, (_m, token: string) => `_cursor=x${token}`);
    expectOutcome(await get(tampered.slice(BASE.length + 1)), 400, { expression: '_cursor' });
  });

  it('follows writes: an update moves a resource between results, a delete removes it', async () => {
    await put(prescription('rx5', 'p3', 'active', '2024-05-01'));
    expect(ids((await get('MedicationRequest?patient=p3&status=active')).body as Bundle)).toContain(
      'MedicationRequest/rx5',
    );
    await put(prescription('rx5', 'p3', 'stopped', '2024-05-01'));
    expect(ids((await get('MedicationRequest?patient=p3&status=active')).body as Bundle)).not.toContain(
      'MedicationRequest/rx5',
    );
    expect(ids((await get('MedicationRequest?patient=p3&status=stopped')).body as Bundle)).toEqual([
      'MedicationRequest/rx5',
    ]);
    await request(server.app).delete('/fhir/MedicationRequest/rx5').expect(200);
    expect(ids((await get('MedicationRequest?patient=p3&status=stopped')).body as Bundle)).toEqual([]);
  });

  it('answers an unknown parameter with 400 naming it, or ignores and reports it when lenient', async () => {
    expectOutcome(await get('MedicationRequest?colour=blue'), 400, { expression: 'colour' });
    const lenient = await get('MedicationRequest?colour=blue&status=completed').set('Prefer', 'handling=lenient');
    expect(lenient.status).toBe(200);
    const bundle = lenient.body as Bundle;
    expect(ids(bundle)).toEqual(['MedicationRequest/rx2']);
    const reported = bundle.entry?.find((e) => e.search?.mode === 'outcome');
    expect(JSON.stringify(reported?.resource)).toContain('colour');
    expect(bundle.link?.[0].url).toBe(`${BASE}/MedicationRequest?status=completed`);
  });

  it('answers a malformed value and an unknown type with 400', async () => {
    expectOutcome(await get('MedicationRequest?authoredon=2024-13'), 400, { expression: 'authoredon' });
    expectOutcome(await get('Unicorn?name=x'), 404);
    expectOutcome(await get('?_type=Unicorn'), 400, { expression: '_type' });
  });

  it('lists the search parameters of each type in the CapabilityStatement', async () => {
    const metadata = (await get('metadata')).body as {
      rest: { resource: { type: string; searchParam?: { name: string }[]; interaction: { code: string }[] }[] }[];
    };
    const rx = metadata.rest[0].resource.find((r) => r.type === 'MedicationRequest');
    const names = rx?.searchParam?.map((p) => p.name) ?? [];
    expect(names).toEqual(expect.arrayContaining(['patient', 'status', 'authoredon', 'medication', 'code']));
    expect(names).not.toContain('_text');
    expect(rx?.interaction.map((i) => i.code)).toContain('search-type');
  });
});

/** Polls $reindex-status until the parameter is searchable; fails the test if it never is. */
async function waitForReindex(id: string): Promise<Parameters> {
  let status: Parameters | undefined;
  for (let i = 0; i < 200; i++) {
    status = (await get(`SearchParameter/${id}/$reindex-status`)).body as Parameters;
    if (status.parameter?.find((p) => p.name === 'status')?.valueCode === 'completed') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(status?.parameter?.find((p) => p.name === 'status')?.valueCode).toBe('completed');
  return status as Parameters;
}

describe('runtime SearchParameters', () => {
  const definition: SearchParameter = {
    resourceType: 'SearchParameter',
    id: 'rx-intent-text',
    url: 'http://meds-fhir.test/SearchParameter/rx-authored-year',
    name: 'RxNote',
    status: 'active',
    description: 'Prescriptions by the text of their notes',
    code: 'note-text',
    base: ['MedicationRequest'],
    type: 'string',
    expression: 'MedicationRequest.note.text',
  };

  it('refuses a SearchParameter whose expression is not FHIRPath, storing nothing', async () => {
    const response = await request(server.app)
      .put('/fhir/SearchParameter/bad')
      .set('Content-Type', FHIR_JSON)
      .send({ ...definition, id: 'bad', url: 'http://meds-fhir.test/SearchParameter/bad', expression: 'note.(' });
    expectOutcome(response, 422, { expression: 'SearchParameter.expression' });
    expect((await get('SearchParameter/bad')).status).toBe(404);
  });

  it('reindexes existing resources and then answers searches on the new parameter', async () => {
    await put({ ...prescription('rx6', 'p2', 'active', '2024-06-01'), note: [{ text: 'Take with food' }] });
    await put(definition);
    const status = await waitForReindex(definition.id as string);
    expect(status?.parameter?.find((p) => p.name === 'done')?.valueInteger).toBeGreaterThanOrEqual(6);
    const found = await get('MedicationRequest?note-text=take');
    expect(found.status).toBe(200);
    expect(ids(found.body as Bundle)).toEqual(['MedicationRequest/rx6']);
    // A write after the reindex is indexed at write time.
    const created = await createResource(server.app, {
      ...prescription('ignored', 'p1', 'active', '2024-06-02'),
      note: [{ text: 'Take at night' }],
    });
    expect(ids((await get('MedicationRequest?note-text=take')).body as Bundle)).toEqual(
      [`MedicationRequest/${created.id}`, 'MedicationRequest/rx6'].sort(),
    );
  });

  it('refuses a SearchParameter that would replace one of the specification, storing nothing', async () => {
    const attempts: [Partial<SearchParameter>, string][] = [
      [{ code: 'status' }, 'SearchParameter.code'],
      [{ code: 'identifier', base: ['Patient', 'MedicationDispense'] }, 'SearchParameter.code'],
      [{ code: '_tag2' }, 'SearchParameter.code'],
      [{ url: 'http://hl7.org/fhir/SearchParameter/medications-status', code: 'rx-status' }, 'SearchParameter.code'],
    ];
    for (const [change, expression] of attempts) {
      const response = await request(server.app)
        .put('/fhir/SearchParameter/override')
        .set('Content-Type', FHIR_JSON)
        .send({ ...definition, id: 'override', url: 'http://meds-fhir.test/SearchParameter/override', ...change });
      expectOutcome(response, 422, { expression });
    }
    expect((await get('SearchParameter/override')).status).toBe(404);
    expect(ids((await get('MedicationRequest?status=active&_id=rx6')).body as Bundle)).toEqual([
      'MedicationRequest/rx6',
    ]);
  });

  it('drops the old code when a new version renames the parameter', async () => {
    await put({ ...definition, code: 'note-words' });
    await waitForReindex(definition.id as string);
    expect(ids((await get('MedicationRequest?note-words=take&_id=rx6')).body as Bundle)).toEqual([
      'MedicationRequest/rx6',
    ]);
    expectOutcome(await get('MedicationRequest?note-text=take'), 400, { expression: 'note-text' });
  });

  it('never reverts a resource updated while the reindex runs', async () => {
    const count = 150;
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: Array.from({ length: count }, (_, i) => ({
        resource: { ...prescription(`race-${i}`, 'p1', 'active', '2024-07-01'), note: [{ text: 'before' }] },
        request: { method: 'PUT' as const, url: `MedicationRequest/race-${i}` },
      })),
    };
    await request(server.app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle).expect(200);
    const racing: SearchParameter = {
      ...definition,
      id: 'rx-note-race',
      url: 'http://meds-fhir.test/SearchParameter/rx-note-race',
      code: 'race-note',
    };
    await put(racing);
    // Updates sent while the reindex walks the collection, ten at a time.
    for (let start = 0; start < count; start += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, k) =>
          put({ ...prescription(`race-${start + k}`, 'p1', 'active', '2024-07-01'), note: [{ text: 'after' }] }),
        ),
      );
    }
    await waitForReindex(racing.id as string);
    const found = await get(`MedicationRequest?race-note=after&_count=${count}&_total=accurate`);
    expect((found.body as Bundle).total).toBe(count);
    for (let i = 0; i < count; i++) {
      const read = await get(`MedicationRequest/race-${i}`);
      expect(read.body.meta.versionId).toBe('2');
      expect(read.body.note[0].text).toBe('after');
    }
    const next = await request(server.app)
      .put('/fhir/MedicationRequest/race-0')
      .set('Content-Type', FHIR_JSON)
      .set('If-Match', 'W/"2"')
      .send({ ...prescription('race-0', 'p1', 'active', '2024-07-01'), note: [{ text: 'third' }] });
    expect(next.status).toBe(200);
  });

  it('stops answering on a deleted SearchParameter', async () => {
    await request(server.app).delete(`/fhir/SearchParameter/${definition.id}`).expect(200);
    expectOutcome(await get('MedicationRequest?note-text=take'), 400, { expression: 'note-text' });
  });
});
