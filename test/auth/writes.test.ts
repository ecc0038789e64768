import type { Bundle, MedicationRequest, OperationOutcome, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';
import { IDENTIFIER_SYSTEM, loadWorld, PART2_LABEL } from './fixtures';

/** Writes under access control: nothing a requester could not read afterwards, no hidden target touched. */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
  await loadWorld(server.app);
});
afterAll(async () => server.close());

const tokens = {
  patientP1: { scope: 'patient/*.cruds', patient: 'acc-p1' },
  teammate: { scope: 'user/*.cruds', fhirUser: 'Practitioner/acc-d1' },
  teammateCleared: { scope: 'user/*.cruds', fhirUser: 'Practitioner/acc-d1', clearance: ['42CFRPart2'] },
  system: { scope: 'system/*.cruds' },
};

async function as(who: keyof typeof tokens) {
  return `Bearer ${await tokenFor({ sub: who, ...tokens[who] })}`;
}

const rx = (patient: string, extra: Partial<MedicationRequest> = {}): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  status: 'active',
  intent: 'order',
  medicationReference: { reference: 'Medication/acc-med' },
  subject: { reference: `Patient/${patient}` },
  ...extra,
});

async function stored(type: string, id: string): Promise<Resource & { meta?: { versionId?: string } }> {
  return (await request(server.app).get(`/fhir/${type}/${id}`)).body as Resource;
}

function expectForbidden(response: request.Response): void {
  expect(response.status).toBe(403);
  expect((response.body as OperationOutcome).issue?.[0].code).toBe('forbidden');
}

it('lets a patient token create in its own compartment only', async () => {
  const own = await request(server.rawApp)
    .post('/fhir/MedicationRequest')
    .set('Authorization', await as('patientP1'))
    .set('Content-Type', FHIR_JSON)
    .send(rx('acc-p1'));
  expect(own.status).toBe(201);
  const other = await request(server.rawApp)
    .post('/fhir/MedicationRequest')
    .set('Authorization', await as('patientP1'))
    .set('Content-Type', FHIR_JSON)
    .send(rx('acc-p2'));
  expectForbidden(other);
  const search = await request(server.app).get('/fhir/MedicationRequest?subject=Patient/acc-p2&_summary=count');
  expect(search.body.total).toBe(2);
});

it('keeps a patient token from moving a resource into another compartment', async () => {
  const before = await stored('MedicationRequest', 'acc-mr-p1');
  const moved = await request(server.rawApp)
    .put('/fhir/MedicationRequest/acc-mr-p1')
    .set('Authorization', await as('patientP1'))
    .set('Content-Type', FHIR_JSON)
    .send({ ...before, subject: { reference: 'Patient/acc-p2' } });
  expectForbidden(moved);
  const patched = await request(server.rawApp)
    .patch('/fhir/MedicationRequest/acc-mr-p1')
    .set('Authorization', await as('patientP1'))
    .set('Content-Type', 'application/json-patch+json')
    .send([{ op: 'replace', path: '/subject/reference', value: 'Patient/acc-p2' }]);
  expectForbidden(patched);
  expect(await stored('MedicationRequest', 'acc-mr-p1')).toEqual(before);
});

it('answers a write to a hidden resource as to one that does not exist, and leaves it alone', async () => {
  const before = await stored('MedicationRequest', 'acc-mr-p1-part2');
  const auth = await as('teammate');
  const update = await request(server.rawApp)
    .put('/fhir/MedicationRequest/acc-mr-p1-part2')
    .set('Authorization', auth)
    .set('Content-Type', FHIR_JSON)
    .send({ ...rx('acc-p1'), id: 'acc-mr-p1-part2', status: 'stopped' });
  expect(update.status).toBe(404);
  const patch = await request(server.rawApp)
    .patch('/fhir/MedicationRequest/acc-mr-p1-part2')
    .set('Authorization', auth)
    .set('Content-Type', 'application/json-patch+json')
    .send([{ op: 'replace', path: '/status', value: 'stopped' }]);
  expect(patch.status).toBe(404);
  const remove = await request(server.rawApp)
    .delete('/fhir/MedicationRequest/acc-mr-p1-part2')
    .set('Authorization', auth);
  const absent = await request(server.rawApp)
    .delete('/fhir/MedicationRequest/never-existed')
    .set('Authorization', auth);
  expect([remove.status, remove.body.issue?.[0].code]).toEqual([absent.status, absent.body.issue?.[0].code]);
  const conditionalDelete = await request(server.rawApp)
    .delete(`/fhir/MedicationRequest?identifier=${IDENTIFIER_SYSTEM}|acc-mr-p1-part2`)
    .set('Authorization', auth);
  expect(conditionalDelete.status).toBe(200);
  expect(conditionalDelete.body.issue?.[0].code).toBe('not-found');
  const conditionalPatch = await request(server.rawApp)
    .patch(`/fhir/MedicationRequest?identifier=${IDENTIFIER_SYSTEM}|acc-mr-p1-part2`)
    .set('Authorization', auth)
    .set('Content-Type', 'application/json-patch+json')
    .send([{ op: 'replace', path: '/status', value: 'stopped' }]);
  expect(conditionalPatch.status).toBe(404);
  expect(await stored('MedicationRequest', 'acc-mr-p1-part2')).toEqual(before);
});

it('never matches a hidden resource in a conditional update: it creates a new one instead', async () => {
  const auth = await as('teammate');
  const identifier = [{ system: IDENTIFIER_SYSTEM, value: 'acc-mr-p1-part2' }];
  const response = await request(server.rawApp)
    .put(`/fhir/MedicationRequest?identifier=${IDENTIFIER_SYSTEM}|acc-mr-p1-part2`)
    .set('Authorization', auth)
    .set('Content-Type', FHIR_JSON)
    .send(rx('acc-p1', { identifier }));
  expect(response.status).toBe(201);
  expect(response.body.id).not.toBe('acc-mr-p1-part2');
  expect((await stored('MedicationRequest', 'acc-mr-p1-part2')).meta?.versionId).toBe('1');
});

it('lets only a cleared requester add or remove a sensitivity label', async () => {
  const created = await request(server.app)
    .post('/fhir/MedicationRequest')
    .set('Content-Type', FHIR_JSON)
    .send(rx('acc-p1'));
  const id = created.body.id as string;
  const labelled = { ...created.body, meta: { security: [PART2_LABEL] } };
  const refused = await request(server.rawApp)
    .put(`/fhir/MedicationRequest/${id}`)
    .set('Authorization', await as('teammate'))
    .set('Content-Type', FHIR_JSON)
    .send(labelled);
  expectForbidden(refused);
  expect(refused.body.issue[0].details.text).toContain('42CFRPart2');
  const accepted = await request(server.rawApp)
    .put(`/fhir/MedicationRequest/${id}`)
    .set('Authorization', await as('teammateCleared'))
    .set('Content-Type', FHIR_JSON)
    .send(labelled);
  expect(accepted.status).toBe(200);
  // The practitioner without clearance now cannot see it, let alone unlabel it.
  const hidden = await request(server.rawApp)
    .get(`/fhir/MedicationRequest/${id}`)
    .set('Authorization', await as('teammate'));
  expect(hidden.status).toBe(404);
  const { meta: _labels, ...unlabelled } = accepted.body as MedicationRequest;
  const patient = await request(server.rawApp)
    .put(`/fhir/MedicationRequest/${id}`)
    .set('Authorization', await as('patientP1'))
    .set('Content-Type', FHIR_JSON)
    .send(unlabelled);
  expectForbidden(patient);
  expect((await stored('MedicationRequest', id)).meta?.versionId).toBe('2');
});

it('lets no patient/ scope change what the server does for everyone', async () => {
  const check = {
    resourceType: 'PlanDefinition',
    url: 'https://meds-fhir.test/PlanDefinition/invented',
    status: 'active',
  };
  const refused = await request(server.rawApp)
    .post('/fhir/PlanDefinition')
    .set('Authorization', await as('patientP1'))
    .set('Content-Type', FHIR_JSON)
    .send(check);
  expectForbidden(refused);
  const profile = await request(server.rawApp)
    .put('/fhir/StructureDefinition/meds-dispense')
    .set('Authorization', await as('patientP1'))
    .set('Content-Type', FHIR_JSON)
    .send({ resourceType: 'StructureDefinition', id: 'meds-dispense' });
  expectForbidden(profile);
  const search = await request(server.app).get(
    '/fhir/PlanDefinition?url=https://meds-fhir.test/PlanDefinition/invented',
  );
  expect(search.body.total).toBe(0);
});

it('authorizes each transaction entry: one refused entry fails the whole transaction', async () => {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { resource: rx('acc-p1', { note: [{ text: 'tx-own' }] }), request: { method: 'POST', url: 'MedicationRequest' } },
      {
        resource: rx('acc-p2', { note: [{ text: 'tx-other' }] }),
        request: { method: 'POST', url: 'MedicationRequest' },
      },
    ],
  };
  const response = await request(server.rawApp)
    .post('/fhir')
    .set('Authorization', await as('patientP1'))
    .set('Content-Type', FHIR_JSON)
    .send(bundle);
  expect(response.status).toBe(403);
  const all = await request(server.app).get('/fhir/MedicationRequest?_count=200');
  expect(JSON.stringify(all.body)).not.toContain('tx-own');
});
