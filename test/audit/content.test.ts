import type { AuditEvent, Bundle, MedicationRequest, OperationOutcome, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { ACT_CODE } from '../../src/auth/labels';
import { createResource, expectOutcome, FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';
import {
  auditOf,
  auditsOf,
  clientOf,
  DCM,
  dataOf,
  patientsOf,
  queryOf,
  requestId,
  requestIdOf,
  requestorOf,
  subtypeOf,
} from './support';

/**
 * What each interaction writes to the audit trail (issue 11, IHE BALP): reads, searches, writes,
 * Bundles and their entries, and refusals (401, 403, hidden 404), through the real app.
 */
let server: TestServer;
const PART2 = { system: ACT_CODE, code: '42CFRPart2' };

/** A clinician's app: a user (fhirUser, sub) using a client, with a purpose of use. */
const CLINICIAN = {
  sub: 'user-42',
  client_id: 'ehr-app',
  fhirUser: 'Practitioner/audit-doc',
  scope: 'system/*.cruds',
  clearance: ['*'],
  purpose_of_use: 'TREAT',
};
let clinician: string;

const prescription = (patient: string, extra: Partial<MedicationRequest> = {}): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  status: 'active',
  intent: 'order',
  medicationCodeableConcept: { text: 'buprenorphine 8 mg' },
  subject: { reference: `Patient/${patient}` },
  ...extra,
});

beforeAll(async () => {
  server = await startTestServer(__filename);
  clinician = `Bearer ${await tokenFor(CLINICIAN)}`;
  for (const id of ['aud-p1', 'aud-p2']) {
    await request(server.app)
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Patient', id, name: [{ family: id }] })
      .expect(201);
  }
});
afterAll(async () => server.close());

function as(authorization: string | undefined, id: string) {
  return {
    get: (path: string) => {
      const call = request(server.rawApp).get(path).set('X-Request-Id', id);
      return authorization ? call.set('Authorization', authorization) : call;
    },
    send: (method: 'post' | 'put' | 'patch' | 'delete', path: string, body?: unknown, type = FHIR_JSON) => {
      let call = request(server.rawApp)[method](path).set('X-Request-Id', id);
      if (authorization) call = call.set('Authorization', authorization);
      return body === undefined ? call : call.set('Content-Type', type).send(body as object);
    },
  };
}

function expectRestEvent(event: AuditEvent, subtype: string, action: string, outcome: string): void {
  expect(event.type).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' });
  expect(subtypeOf(event)).toBe(subtype);
  expect(event.action).toBe(action);
  expect(event.outcome).toBe(outcome);
  expect(Math.abs(Date.parse(event.recorded) - Date.now())).toBeLessThan(60_000);
  expect(event.source.observer).toBeDefined();
  // The server that answered is the event's source: SERVER_ID and the FHIR base.
  expect(event.source.observer.display).toMatch(/ http:\/\/meds-fhir\.test\/fhir$/);
  expect(event.source.type?.[0].code).toBe('4');
}

describe('reads and searches', () => {
  it('a read names the user, the client, the server, the patient and the version read', async () => {
    const rx = await createResource(server.app, prescription('aud-p1'));
    const id = requestId('read');
    await as(clinician, id).get(`/fhir/MedicationRequest/${rx.id}`).expect(200);
    const event = await auditOf(server, id);
    expectRestEvent(event, 'read', 'R', '0');
    const user = requestorOf(event);
    expect(user?.who?.reference).toBe('Practitioner/audit-doc');
    expect(user?.who?.identifier?.value).toBe('user-42');
    expect(user?.purposeOfUse?.[0].coding?.[0].code).toBe('TREAT');
    const client = clientOf(event);
    expect(client?.who?.identifier?.value).toBe('ehr-app');
    expect(client?.requestor).toBe(false);
    expect(client?.network?.address).toMatch(/127\.0\.0\.1|::1/);
    // BALP Read: the data flows to the client (the Destination).
    expect(client?.type?.coding?.[0]).toEqual({ system: DCM, code: '110152' });
    expect(patientsOf(event)).toEqual(['Patient/aud-p1']);
    expect(dataOf(event).map((e) => e.what?.reference)).toEqual([`MedicationRequest/${rx.id}/_history/1`]);
    expect(queryOf(event)).toBeUndefined();
    expect(event.meta?.security).toBeUndefined();
  });

  it('a vread and an instance history name what they read', async () => {
    const rx = await createResource(server.app, prescription('aud-p1'));
    const vread = requestId('vread');
    await as(clinician, vread).get(`/fhir/MedicationRequest/${rx.id}/_history/1`).expect(200);
    const history = requestId('history');
    await as(clinician, history).get(`/fhir/MedicationRequest/${rx.id}/_history`).expect(200);
    const [vreadEvent, historyEvent] = [await auditOf(server, vread), await auditOf(server, history)];
    expectRestEvent(vreadEvent, 'vread', 'R', '0');
    expect(dataOf(vreadEvent)[0].what?.reference).toBe(`MedicationRequest/${rx.id}/_history/1`);
    expectRestEvent(historyEvent, 'history-instance', 'R', '0');
    expect(patientsOf(historyEvent)).toEqual(['Patient/aud-p1']);
    expect(queryOf(historyEvent)).toBe(`GET MedicationRequest/${rx.id}/_history`);
  });

  it('a search records the query as sent and every patient of its results', async () => {
    await createResource(server.app, prescription('aud-p1', { authoredOn: '2031-05-05' }));
    await createResource(server.app, prescription('aud-p2', { authoredOn: '2031-05-05' }));
    const id = requestId('search');
    const response = await as(clinician, id).get('/fhir/MedicationRequest?authoredon=2031-05-05&_count=10').expect(200);
    expect((response.body as Bundle).total).toBe(2);
    const event = await auditOf(server, id);
    expectRestEvent(event, 'search-type', 'E', '0');
    // BALP Query: the client sends the query (Source), the server answers it (Destination).
    expect(clientOf(event)?.type?.coding?.[0]).toEqual({ system: DCM, code: '110153' });
    expect(queryOf(event)).toBe('GET MedicationRequest?authoredon=2031-05-05&_count=10');
    expect(patientsOf(event)).toEqual(['Patient/aud-p1', 'Patient/aud-p2']);
    // One event per query: the results are its patients, not one entity per resource.
    expect(dataOf(event)).toEqual([]);
  });

  it('a search names the patient it asks about even when nothing is found, and POST _search records the form', async () => {
    const id = requestId('empty-search');
    await as(clinician, id).get('/fhir/Observation?patient=aud-p2&code=none|none').expect(200);
    expect(patientsOf(await auditOf(server, id))).toEqual(['Patient/aud-p2']);
    const posted = requestId('post-search');
    await as(clinician, posted)
      .send('post', '/fhir/MedicationRequest/_search', 'authoredon=2031-05-05', 'application/x-www-form-urlencoded')
      .expect(200);
    const event = await auditOf(server, posted);
    expect(queryOf(event)).toBe('POST MedicationRequest/_search\n\nauthoredon=2031-05-05');
    expect(patientsOf(event)).toEqual(['Patient/aud-p1', 'Patient/aud-p2']);
  });

  it('a compartment search and $medication-review name their patient', async () => {
    const compartment = requestId('compartment');
    await as(clinician, compartment).get('/fhir/Patient/aud-p2/MedicationRequest').expect(200);
    expect(patientsOf(await auditOf(server, compartment))).toEqual(['Patient/aud-p2']);
    const review = requestId('review');
    await as(clinician, review).get('/fhir/Patient/aud-p1/$medication-review?date=2026-06-30').expect(200);
    const event = await auditOf(server, review);
    expectRestEvent(event, 'operation', 'E', '0');
    expect(event.subtype?.map((s) => s.code)).toContain('medication-review');
    expect(patientsOf(event)).toEqual(['Patient/aud-p1']);
  });
});

describe('writes', () => {
  it("a create's AuditEvent is stored before the answer, with the version it created", async () => {
    const id = requestId('create');
    const response = await as(clinician, id)
      .send('post', '/fhir/MedicationRequest', prescription('aud-p2'))
      .set('Prefer', 'return=minimal')
      .expect(201);
    const created = /MedicationRequest\/([^/]+)\/_history\/1$/.exec(response.headers.location)?.[1];
    // No flush: a write's audit is durable before its answer is sent.
    const event = await auditOf(server, id, { flush: false });
    expectRestEvent(event, 'create', 'C', '0');
    expect(dataOf(event).map((e) => e.what?.reference)).toEqual([`MedicationRequest/${created}/_history/1`]);
    expect(patientsOf(event)).toEqual(['Patient/aud-p2']);
    // BALP Create: the user is the author, the client the Source.
    expect(requestorOf(event)?.type?.coding?.[0].code).toBe('AUT');
    expect(clientOf(event)?.type?.coding?.[0].code).toBe('110153');
  });

  it("an auditor finds a write's AuditEvent through the API as soon as the write has answered", async () => {
    const auditor = `Bearer ${await tokenFor({ sub: 'auditor', scope: 'system/AuditEvent.rs', clearance: ['*'] })}`;
    const id = requestId('create-then-search');
    const response = await as(clinician, id)
      .send('post', '/fhir/MedicationRequest', prescription('aud-p1'))
      .expect(201);
    const version = `MedicationRequest/${(response.body as MedicationRequest).id}/_history/1`;
    const found = await request(server.rawApp)
      .get(`/fhir/AuditEvent?entity=${version}&action=C`)
      .set('Authorization', auditor)
      .expect(200);
    expect((found.body as Bundle).entry?.map((e) => requestIdOf(e.resource as AuditEvent))).toEqual([id]);
  });

  it('an update, a patch and a delete name each version they made', async () => {
    const rx = await createResource(server.app, prescription('aud-p1'));
    const update = requestId('update');
    await as(clinician, update)
      .send('put', `/fhir/MedicationRequest/${rx.id}`, { ...rx, status: 'on-hold' })
      .expect(200);
    const patch = requestId('patch');
    await as(clinician, patch)
      .send(
        'patch',
        `/fhir/MedicationRequest/${rx.id}`,
        [{ op: 'replace', path: '/status', value: 'active' }],
        'application/json-patch+json',
      )
      .expect(200);
    const remove = requestId('delete');
    await as(clinician, remove).send('delete', `/fhir/MedicationRequest/${rx.id}`).expect(200);
    const events = await Promise.all([update, patch, remove].map((id) => auditOf(server, id, { flush: false })));
    expect(events.map((e) => [subtypeOf(e), e.action, dataOf(e)[0].what?.reference])).toEqual([
      ['update', 'U', `MedicationRequest/${rx.id}/_history/2`],
      ['patch', 'U', `MedicationRequest/${rx.id}/_history/3`],
      ['delete', 'D', `MedicationRequest/${rx.id}/_history/4`],
    ]);
    for (const event of events) expect(patientsOf(event)).toEqual(['Patient/aud-p1']);
  });

  it('a refused write is audited as a failure, naming the patient whose record it aimed at', async () => {
    const id = requestId('invalid');
    const response = await as(clinician, id).send(
      'post',
      '/fhir/MedicationRequest',
      prescription('aud-p1', { status: 'bogus' as 'active' }),
    );
    expectOutcome(response, 422);
    const event = await auditOf(server, id, { flush: false });
    expectRestEvent(event, 'create', 'C', '4');
    expect(event.outcomeDesc).toMatch(/^HTTP 422/);
    expect(patientsOf(event)).toEqual(['Patient/aud-p1']);
    expect(dataOf(event)).toEqual([]);
  });
});

describe('Bundles', () => {
  it('a transaction writes one AuditEvent for itself and one per entry, each with its outcome', async () => {
    const id = requestId('transaction');
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:0b0b0b0b-0000-4000-8000-000000000001',
          resource: { resourceType: 'Patient', name: [{ family: 'Bundled' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: prescription('x', { subject: { reference: 'urn:uuid:0b0b0b0b-0000-4000-8000-000000000001' } }),
          request: { method: 'POST', url: 'MedicationRequest' },
        },
        { request: { method: 'GET', url: 'Patient/aud-p1' } },
      ],
    };
    const response = await as(clinician, id).send('post', '/fhir', bundle).expect(200);
    const locations = (response.body as Bundle).entry?.map((e) => e.response?.location ?? '') ?? [];
    const patient = /Patient\/([^/]+)\//.exec(locations[0])?.[1];
    // The Bundle's and its writes' events are committed with the transaction itself, before the answer.
    const committed = await auditsOf(server, id, { flush: false });
    expect(committed.map((e) => [subtypeOf(e), e.action, e.outcome])).toEqual([
      ['transaction', 'E', '0'],
      ['create', 'C', '0'],
      ['create', 'C', '0'],
    ]);
    // The read that ran after the commit is batched like any read.
    const events = await auditsOf(server, id);
    expect(events.map((e) => [subtypeOf(e), e.action, e.outcome])).toEqual([
      ['transaction', 'E', '0'],
      ['create', 'C', '0'],
      ['create', 'C', '0'],
      ['read', 'R', '0'],
    ]);
    expect(dataOf(events[1])[0].what?.reference).toBe(`Patient/${patient}/_history/1`);
    expect(patientsOf(events[2])).toEqual([`Patient/${patient}`]);
    expect(patientsOf(events[3])).toEqual(['Patient/aud-p1']);
  });

  it('the entries of a failed transaction are audited as not stored, without versions', async () => {
    const id = requestId('failed-transaction');
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: prescription('aud-p1'), request: { method: 'POST', url: 'MedicationRequest' } },
        {
          resource: prescription('aud-p1', { status: 'bogus' as 'active' }),
          request: { method: 'POST', url: 'MedicationRequest' },
        },
      ],
    };
    expectOutcome(await as(clinician, id).send('post', '/fhir', bundle), 422);
    const events = await auditsOf(server, id, { flush: false });
    expect(events.map((e) => [subtypeOf(e), e.outcome])).toEqual([
      ['transaction', '4'],
      ['create', '4'],
      ['create', '4'],
    ]);
    expect(events[1].outcomeDesc).toMatch(/^Not stored: the transaction failed/);
    expect(dataOf(events[1])[0].what?.reference).toMatch(/^MedicationRequest\/[^/]+$/);
  });

  it('a batch audits each entry with its own outcome, including entries refused before routing', async () => {
    const id = requestId('batch');
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'GET', url: 'Patient/aud-p2' } },
        { request: { method: 'GET', url: 'Patient/no-such-patient' } },
        { request: { method: 'GET', url: 'NoSuchType/1' } },
        { resource: prescription('aud-p2'), request: { method: 'POST', url: 'MedicationRequest' } },
      ],
    };
    const response = await as(clinician, id).send('post', '/fhir', bundle).expect(200);
    // Every event is stored before the answer: the create's in its own commit, the others with the Bundle's.
    const events = await auditsOf(server, id, { flush: false });
    expect(events.map((e) => [subtypeOf(e), e.outcome])).toEqual([
      ['batch', '0'],
      ['read', '0'],
      ['read', '4'],
      ['read', '4'],
      ['create', '0'],
    ]);
    expect(patientsOf(events[1])).toEqual(['Patient/aud-p2']);
    const location = (response.body as Bundle).entry?.[3].response?.location ?? '';
    expect(dataOf(events[4])[0].what?.reference).toBe(/MedicationRequest\/[^/]+\/_history\/1/.exec(location)?.[0]);
  });
});

describe('refusals', () => {
  it('a request without a token (401) is audited with its network address and what it asked for', async () => {
    const id = requestId('no-token');
    await as(undefined, id).get('/fhir/MedicationRequest/some-id?_elements=status').expect(401);
    const event = await auditOf(server, id);
    expectRestEvent(event, 'read', 'R', '4');
    expect(event.outcomeDesc).toMatch(/^HTTP 401 login/);
    expect(requestorOf(event)?.who?.display).toBe('unauthenticated client');
    expect(clientOf(event)?.network?.address).toMatch(/127\.0\.0\.1|::1/);
    expect(queryOf(event)).toBe('GET MedicationRequest/some-id?_elements=status');
    expect(dataOf(event).map((e) => e.what?.reference)).toEqual(['MedicationRequest/some-id']);
  });

  it('a token that fails verification (401) is audited without anything from the token', async () => {
    const id = requestId('bad-token');
    const forged = await tokenFor(CLINICIAN, 'another-secret-of-at-least-thirty-two-characters');
    await as(`Bearer ${forged}`, id).get('/fhir/Patient?name=x').expect(401);
    const event = await auditOf(server, id);
    expect(event.outcome).toBe('4');
    expect(JSON.stringify(event)).not.toContain('user-42');
    expect(JSON.stringify(event)).not.toContain(forged);
  });

  it('a request the scopes do not grant (403) is audited with the requester and the reason', async () => {
    const rx = await createResource(server.app, prescription('aud-p1'));
    const id = requestId('forbidden');
    const token = `Bearer ${await tokenFor({ sub: 'svc-9', client_id: 'svc-9', scope: 'system/Patient.rs' })}`;
    expectOutcome(await as(token, id).get(`/fhir/MedicationRequest/${rx.id}`), 403);
    const event = await auditOf(server, id);
    expectRestEvent(event, 'read', 'R', '4');
    expect(event.outcomeDesc).toMatch(/^HTTP 403 forbidden/);
    // A backend service's token names the client only: the client is the requestor.
    expect(requestorOf(event)?.who?.identifier?.value).toBe('svc-9');
    expect(dataOf(event).map((e) => e.what?.reference)).toEqual([`MedicationRequest/${rx.id}`]);
  });

  it('a read of a record the requester may not see (404) is audited as a failed read that reveals nothing', async () => {
    const rx = await createResource(server.app, prescription('aud-p1'));
    const id = requestId('hidden');
    const token = `Bearer ${await tokenFor({ sub: 'p2-app', patient: 'aud-p2', scope: 'patient/*.rs' })}`;
    expectOutcome(await as(token, id).get(`/fhir/MedicationRequest/${rx.id}`), 404);
    const event = await auditOf(server, id);
    expectRestEvent(event, 'read', 'R', '4');
    expect(dataOf(event).map((e) => e.what?.reference)).toEqual([`MedicationRequest/${rx.id}`]);
    expect(patientsOf(event)).toEqual([]);
  });
});

describe('Part 2 records', () => {
  it('the audit of a labelled record carries its labels, on the event and on the entity', async () => {
    const rx = await createResource(server.app, prescription('aud-p1', { meta: { security: [PART2] } }));
    const read = requestId('part2-read');
    await as(clinician, read).get(`/fhir/MedicationRequest/${rx.id}`).expect(200);
    const event = await auditOf(server, read);
    expect(event.meta?.security).toEqual([PART2]);
    expect(dataOf(event)[0].securityLabel).toEqual([PART2]);

    const search = requestId('part2-search');
    await as(clinician, search).get(`/fhir/MedicationRequest?_id=${rx.id}`).expect(200);
    const searched = await auditOf(server, search);
    expect(searched.meta?.security).toEqual([PART2]);
    expect(searched.entity?.find((e) => e.role?.code === '24')?.securityLabel).toEqual([PART2]);
  });

  it('an ordinary record read with a labelled one in the same search makes the search event labelled', async () => {
    const id = requestId('mixed');
    await as(clinician, id).get('/fhir/MedicationRequest?subject=Patient/aud-p1&_count=100').expect(200);
    expect((await auditOf(server, id)).meta?.security).toEqual([PART2]);
  });
});

describe('the stored AuditEvents', () => {
  it('are valid R4 and carry no resource content', async () => {
    const rx = await createResource(server.app, prescription('aud-p1', { note: [{ text: 'a-private-note' }] }));
    const id = requestId('valid');
    await as(clinician, id).get(`/fhir/MedicationRequest/${rx.id}`).expect(200);
    const event = await auditOf(server, id);
    expect(JSON.stringify(event)).not.toContain('a-private-note');
    const auditor = `Bearer ${await tokenFor({ sub: 'auditor', scope: 'system/AuditEvent.cruds' })}`;
    const validated = await request(server.rawApp)
      .post('/fhir/AuditEvent/$validate')
      .set('Authorization', auditor)
      .set('Content-Type', FHIR_JSON)
      .send(event);
    expect(validated.status).toBe(200);
    const errors = (validated.body as OperationOutcome).issue?.filter((i) => i.severity === 'error') ?? [];
    expect(errors).toEqual([]);
  });

  it('are not themselves audited when the server stores them, and metadata is not audited', async () => {
    await server.running.audit.flush();
    const before = await server.running.connection.db.collection('AuditEvent').countDocuments({});
    const id = requestId('metadata');
    await as(undefined, id).get('/fhir/metadata').expect(200);
    await server.running.audit.flush();
    expect(await auditsOf(server, id)).toEqual([]);
    expect(await server.running.connection.db.collection('AuditEvent').countDocuments({})).toBe(before);
  });

  it("name a Patient user as the agent, so the event is in that patient's compartment", async () => {
    const id = requestId('patient-user');
    const token = `Bearer ${await tokenFor({ sub: 'pat-1', fhirUser: 'Patient/aud-p1', patient: 'aud-p1', scope: 'patient/Patient.rs' })}`;
    await as(token, id).get('/fhir/Patient/aud-p1').expect(200);
    const event = await auditOf(server, id);
    expect(requestorOf(event)?.who?.reference).toBe('Patient/aud-p1');
    const patient = (await request(server.app).get('/fhir/Patient/aud-p1')).body as Patient;
    expect(dataOf(event)[0].what?.reference).toBe(`Patient/aud-p1/_history/${patient.meta?.versionId}`);
  });
});
