import type { Bundle, BundleEntry, MedicationRequest, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { expectOutcome, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(() => server.close());

const MRN = 'urn:oid:2.16.840.1.113883.19.5';
const patient = (mrn: string, family = 'Doe'): Patient => ({
  resourceType: 'Patient',
  identifier: [{ system: MRN, value: mrn }],
  name: [{ family }],
});

const matching = async (type: string, query: string): Promise<string[]> => {
  const response = await request(server.app).get(`/fhir/${type}?${query}`);
  expect(response.status).toBe(200);
  return ((response.body as Bundle).entry ?? []).map((e) => e.resource?.id as string);
};
const versionsOf = async (type: string, id: string): Promise<number> =>
  ((await request(server.app).get(`/fhir/${type}/${id}/_history`)).body as Bundle).entry?.length ?? 0;

const conditionalCreate = (resource: Patient, condition: string) =>
  request(server.app)
    .post('/fhir/Patient')
    .set('Content-Type', FHIR_JSON)
    .set('If-None-Exist', condition)
    .send(resource);

describe('conditional create (If-None-Exist)', () => {
  it('creates when nothing matches, then returns the match with 200 and creates nothing', async () => {
    const first = await conditionalCreate(patient('C1'), `identifier=${MRN}|C1`);
    expect(first.status).toBe(201);
    const again = await conditionalCreate(patient('C1', 'Changed'), `Patient?identifier=${MRN}|C1`);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.name[0].family).toBe('Doe');
    expect(again.headers.location).toContain(`/Patient/${first.body.id}/_history/1`);
    expect(await matching('Patient', `identifier=${MRN}|C1`)).toEqual([first.body.id]);
    expect(await versionsOf('Patient', first.body.id)).toBe(1);
  });

  it('answers 412 when the condition matches several resources, 400 for an unknown parameter', async () => {
    await conditionalCreate(patient('C2', 'Twin'), `identifier=${MRN}|C2a`);
    await conditionalCreate(patient('C3', 'Twin'), `identifier=${MRN}|C3`);
    expectOutcome(await conditionalCreate(patient('C4', 'Twin'), 'family=Twin'), 412, { code: 'conflict' });
    expect(await matching('Patient', 'family=Twin')).toHaveLength(2);
    expectOutcome(await conditionalCreate(patient('C5'), 'colour=blue'), 400, { expression: 'colour' });
    expectOutcome(await conditionalCreate(patient('C5'), ''), 400);
    expect(await matching('Patient', `identifier=${MRN}|C5`)).toEqual([]);
  });

  it('lets exactly one of 25 racing clients create, and answers every client with that resource', async () => {
    const responses = await Promise.all(
      Array.from({ length: 25 }, () => conditionalCreate(patient('RACE'), `identifier=${MRN}|RACE`)),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(24);
    const ids = new Set(responses.map((r) => r.body.id as string));
    expect(ids.size).toBe(1);
    expect(await matching('Patient', `identifier=${MRN}|RACE`)).toEqual([...ids]);
  });

  it('creates again once the matched resource was deleted (a stale claim does not block)', async () => {
    const first = await conditionalCreate(patient('GONE'), `identifier=${MRN}|GONE`);
    expect(first.status).toBe(201);
    await request(server.app).delete(`/fhir/Patient/${first.body.id}`).expect(200);
    const second = await conditionalCreate(patient('GONE'), `identifier=${MRN}|GONE`);
    expect(second.status).toBe(201);
    expect(second.body.id).not.toBe(first.body.id);
    expect(await matching('Patient', `identifier=${MRN}|GONE`)).toEqual([second.body.id]);
  });
});

describe('conditional update (PUT [type]?query)', () => {
  const put = (query: string, resource: Patient) =>
    request(server.app).put(`/fhir/Patient?${query}`).set('Content-Type', FHIR_JSON).send(resource);

  it('creates on no match, updates the one match, refuses a mismatched id and several matches', async () => {
    const created = await put(`identifier=${MRN}|U1`, patient('U1'));
    expect(created.status).toBe(201);
    const updated = await put(`identifier=${MRN}|U1`, patient('U1', 'Updated'));
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.body.id);
    expect(updated.body.meta.versionId).toBe('2');
    expectOutcome(await put(`identifier=${MRN}|U1`, { ...patient('U1'), id: 'someone-else' }), 400, {
      expression: 'Patient.id',
    });
    await put(`identifier=${MRN}|U2`, patient('U2', 'Many'));
    await put(`identifier=${MRN}|U3`, patient('U3', 'Many'));
    expectOutcome(await put('family=Many', patient('U4', 'Many')), 412);
    expect(await versionsOf('Patient', created.body.id)).toBe(2);
  });

  it('refuses to create under the id of an unrelated resource when nothing matches, changing nothing', async () => {
    const other = await put(`identifier=${MRN}|OTHER`, patient('OTHER', 'Unrelated'));
    expect(other.status).toBe(201);
    const hijack = await put(`identifier=${MRN}|NEW1`, { ...patient('NEW1', 'Intruder'), id: other.body.id });
    expectOutcome(hijack, 400, { expression: 'Patient.id' });
    const kept = await request(server.app).get(`/fhir/Patient/${other.body.id}`);
    expect(kept.body.name[0].family).toBe('Unrelated');
    expect(await versionsOf('Patient', other.body.id)).toBe(1);
    expect(await matching('Patient', `identifier=${MRN}|NEW1`)).toEqual([]);
    // A free id (or the id of a deleted resource) is an update-as-create.
    const fresh = await put(`identifier=${MRN}|NEW1`, { ...patient('NEW1'), id: 'chosen-by-client' });
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).toBe('chosen-by-client');
  });

  it('lets exactly one of 20 racing conditional updates create the resource', async () => {
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => put(`identifier=${MRN}|URACE`, patient('URACE', `Racer${i}`))),
    );
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    // The others update it, or lose a version race without If-Match (409): never a second resource.
    for (const r of responses) expect([200, 201, 409]).toContain(r.status);
    expect(await matching('Patient', `identifier=${MRN}|URACE`)).toHaveLength(1);
  });
});

describe('conditional delete (DELETE [type]?query)', () => {
  it('deletes the one match, answers 200 to no match and 412 to several (single by default)', async () => {
    const created = await conditionalCreate(patient('D1', 'Deleteme'), `identifier=${MRN}|D1`);
    const none = await request(server.app).delete(`/fhir/Patient?identifier=${MRN}|nobody`);
    expect(none.status).toBe(200);
    expect(none.body.issue[0].code).toBe('not-found');
    await conditionalCreate(patient('D2', 'Deleteme'), `identifier=${MRN}|D2`);
    expectOutcome(await request(server.app).delete('/fhir/Patient?family=Deleteme'), 412);
    expect(await matching('Patient', 'family=Deleteme')).toHaveLength(2);
    const one = await request(server.app).delete(`/fhir/Patient?identifier=${MRN}|D1`);
    expect(one.status).toBe(200);
    expect((await request(server.app).get(`/fhir/Patient/${created.body.id}`)).status).toBe(410);
  });
});

describe('conditional patch (PATCH [type]?query)', () => {
  const jsonPatch = (query: string) =>
    request(server.app)
      .patch(`/fhir/Patient?${query}`)
      .set('Content-Type', 'application/json-patch+json')
      .send([{ op: 'replace', path: '/name/0/family', value: 'Patched' }]);

  it('patches the one match, answers 404 to none and 412 to several', async () => {
    const created = await conditionalCreate(patient('P1'), `identifier=${MRN}|P1`);
    const patched = await jsonPatch(`identifier=${MRN}|P1`);
    expect(patched.status).toBe(200);
    expect(patched.body.id).toBe(created.body.id);
    expect(patched.body.name[0].family).toBe('Patched');
    expectOutcome(await jsonPatch(`identifier=${MRN}|nobody`), 404);
    expectOutcome(await jsonPatch('family=Twin'), 412);
    expect(await matching('Patient', 'family=Patched')).toEqual([created.body.id]);
  });
});

describe('conditional entries in transactions', () => {
  const postBundle = (bundle: Bundle) => request(server.app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle);

  const sync = (mrn: string, rxNumber: string): Bundle => ({
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111',
        resource: patient(mrn, 'Synced'),
        request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|${mrn}` },
      },
      {
        resource: {
          resourceType: 'MedicationRequest',
          identifier: [{ system: 'urn:ehr:rx', value: rxNumber }],
          status: 'active',
          intent: 'order',
          subject: { reference: 'urn:uuid:11111111-1111-4111-8111-111111111111' },
          medicationCodeableConcept: {
            coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1010606' }],
          },
        } as MedicationRequest,
        request: { method: 'PUT', url: `MedicationRequest?identifier=urn:ehr:rx|${rxNumber}` },
      },
    ],
  });

  it('resolves ifNoneExist and conditional PUT, and a re-send changes nothing and says so', async () => {
    const first = await postBundle(sync('T1', 'RX-1'));
    expect(first.status).toBe(200);
    const entries = (first.body as Bundle).entry as BundleEntry[];
    expect(entries.map((e) => e.response?.status)).toEqual(['201 Created', '201 Created']);
    const patientId = (await matching('Patient', `identifier=${MRN}|T1`))[0];
    const [rxId] = await matching('MedicationRequest', 'identifier=urn:ehr:rx|RX-1');
    const rx = (await request(server.app).get(`/fhir/MedicationRequest/${rxId}`)).body as MedicationRequest;
    expect(rx.subject?.reference).toBe(`Patient/${patientId}`);

    const again = await postBundle(sync('T1', 'RX-1'));
    expect(again.status).toBe(200);
    const second = (again.body as Bundle).entry as BundleEntry[];
    expect(second.map((e) => e.response?.status)).toEqual(['200 OK', '200 OK']);
    expect(second[0].response?.outcome?.issue?.[0].details?.text).toMatch(/nothing created/);
    expect(second[1].response?.outcome?.issue?.[0].details?.text).toMatch(/unchanged/);
    expect(await versionsOf('Patient', patientId)).toBe(1);
    expect(await versionsOf('MedicationRequest', rxId)).toBe(1);
    expect(await matching('MedicationRequest', 'identifier=urn:ehr:rx|RX-1')).toEqual([rxId]);
  });

  it('rewrites conditional references, and fails the transaction when one matches nothing or several', async () => {
    const stored = await conditionalCreate(patient('REF1'), `identifier=${MRN}|REF1`);
    const withReference = (reference: string): Bundle => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: {
            resourceType: 'MedicationRequest',
            status: 'active',
            intent: 'order',
            subject: { reference },
            medicationCodeableConcept: { text: 'buprenorphine' },
          } as MedicationRequest,
          request: { method: 'POST', url: 'MedicationRequest' },
        },
      ],
    });
    const ok = await postBundle(withReference(`Patient?identifier=${MRN}|REF1`));
    expect(ok.status).toBe(200);
    expect(ok.body.entry[0].resource.subject.reference).toBe(`Patient/${stored.body.id}`);
    const before = await matching('MedicationRequest', `subject=Patient/${stored.body.id}`);
    expectOutcome(await postBundle(withReference(`Patient?identifier=${MRN}|NOBODY`)), 400, {
      expression: 'Bundle.entry[0]',
    });
    expectOutcome(await postBundle(withReference('Patient?family=Twin')), 412, { expression: 'Bundle.entry[0]' });
    expect(await matching('MedicationRequest', `subject=Patient/${stored.body.id}`)).toEqual(before);
  });

  it('fails with 412 naming the entry whose identifier condition matches two stored resources', async () => {
    for (const family of ['DupA', 'DupB']) {
      await request(server.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(patient('DUP', family));
    }
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: patient('FRESH'),
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|FRESH` },
        },
        {
          resource: patient('DUP'),
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|DUP` },
        },
      ],
    };
    expectOutcome(await postBundle(bundle), 412, { expression: 'Bundle.entry[1]' });
    expect(await matching('Patient', `identifier=${MRN}|FRESH`)).toEqual([]);
  });

  it('refuses a conditional PUT entry whose body id names an unrelated resource', async () => {
    const other = await conditionalCreate(patient('TOTHER', 'Unrelated'), `identifier=${MRN}|TOTHER`);
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: { ...patient('TNEW', 'Intruder'), id: other.body.id },
          request: { method: 'PUT', url: `Patient?identifier=${MRN}|TNEW` },
        },
      ],
    };
    expectOutcome(await postBundle(bundle), 400, { expression: 'Bundle.entry[0]' });
    expect((await request(server.app).get(`/fhir/Patient/${other.body.id}`)).body.name[0].family).toBe('Unrelated');
    expect(await matching('Patient', `identifier=${MRN}|TNEW`)).toEqual([]);
  });

  it('refuses a transaction whose condition resolves to a resource one of its DELETE entries removes', async () => {
    const target = await conditionalCreate(patient('TDEL'), `identifier=${MRN}|TDEL`);
    const deleting = (second: BundleEntry): Bundle => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ request: { method: 'DELETE', url: `Patient/${target.body.id}` } }, second],
    });
    const ifNoneExist = deleting({
      resource: patient('TDEL'),
      request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${MRN}|TDEL` },
    });
    const refused = await postBundle(ifNoneExist);
    expectOutcome(refused, 400, { expression: 'Bundle.entry[1]' });
    expect(JSON.stringify(refused.body)).toContain('Bundle.entry[0] deletes');
    const reference = deleting({
      resource: {
        resourceType: 'MedicationRequest',
        status: 'active',
        intent: 'order',
        subject: { reference: `Patient?identifier=${MRN}|TDEL` },
        medicationCodeableConcept: { text: 'naltrexone' },
      } as MedicationRequest,
      request: { method: 'POST', url: 'MedicationRequest' },
    });
    expectOutcome(await postBundle(reference), 400, { expression: 'Bundle.entry[1]' });
    expect((await request(server.app).get(`/fhir/Patient/${target.body.id}`)).status).toBe(200);
    expect(await matching('MedicationRequest', `subject=Patient/${target.body.id}`)).toEqual([]);
  });

  it('creates one patient when 20 clients send the same transaction at once', async () => {
    const responses = await Promise.all(Array.from({ length: 20 }, () => postBundle(sync('TRACE', 'RX-RACE'))));
    for (const r of responses) expect(r.status).toBe(200);
    expect(await matching('Patient', `identifier=${MRN}|TRACE`)).toHaveLength(1);
    expect(await matching('MedicationRequest', 'identifier=urn:ehr:rx|RX-RACE')).toHaveLength(1);
  });
});
