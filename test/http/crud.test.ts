import type { MedicationRequest, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { createResource, FHIR_JSON, startTestServer, TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

const patient: Patient = { resourceType: 'Patient', name: [{ family: 'Nguyen', given: ['Lan'] }], gender: 'female' };

describe('create', () => {
  it('answers 201 with Location, ETag, Last-Modified and the stored resource, ignoring a client id', async () => {
    const response = await request(server.app)
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send({ ...patient, id: 'client-chosen', meta: { versionId: '7' } });
    expect(response.status).toBe(201);
    const body = response.body as Patient;
    expect(body.id).not.toBe('client-chosen');
    expect(body.meta?.versionId).toBe('1');
    expect(new Date(body.meta?.lastUpdated as string).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(response.headers.location).toMatch(new RegExp(`/fhir/Patient/${body.id}/_history/1$`));
    expect(response.headers.etag).toBe('W/"1"');
    expect(new Date(response.headers['last-modified']).getTime()).toBeLessThanOrEqual(Date.now());
    expect(response.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect(body.name?.[0].family).toBe('Nguyen');
  });

  it('accepts application/json as well as application/fhir+json', async () => {
    const response = await request(server.app)
      .post('/fhir/Patient')
      .set('Content-Type', 'application/json')
      .send(patient);
    expect(response.status).toBe(201);
  });

  it('honours Prefer: return=minimal and return=OperationOutcome', async () => {
    const minimal = await request(server.app)
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('Prefer', 'return=minimal')
      .send(patient);
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.location).toBeDefined();
    const oo = await request(server.app)
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('Prefer', 'return=OperationOutcome')
      .send(patient);
    expect(oo.status).toBe(201);
    expect(oo.body.resourceType).toBe('OperationOutcome');
    expect(oo.body.issue[0].severity).toBe('information');
  });

  it('stores every resource type of R4, not only the medication set', async () => {
    const response = await request(server.app)
      .post('/fhir/ImmunizationRecommendation')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'ImmunizationRecommendation',
        patient: { reference: 'Patient/x' },
        date: '2026-01-01',
        recommendation: [{ vaccineCode: [{ text: 'influenza' }], forecastStatus: { text: 'due' } }],
      });
    expect(response.status).toBe(201);
    const read = await request(server.app).get(`/fhir/ImmunizationRecommendation/${response.body.id}`);
    expect(read.status).toBe(200);
  });
});

describe('read and vread', () => {
  it('reads the current version with its ETag and answers 304 to a matching If-None-Match or If-Modified-Since', async () => {
    const created = await createResource(server.app, patient);
    const read = await request(server.app).get(`/fhir/Patient/${created.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created);
    expect(read.headers.etag).toBe('W/"1"');

    const unchanged = await request(server.app).get(`/fhir/Patient/${created.id}`).set('If-None-Match', 'W/"1"');
    expect(unchanged.status).toBe(304);
    expect(unchanged.text).toBe('');
    const stale = await request(server.app).get(`/fhir/Patient/${created.id}`).set('If-None-Match', 'W/"0"');
    expect(stale.status).toBe(200);

    const later = new Date(Date.now() + 60_000).toUTCString();
    const notModified = await request(server.app).get(`/fhir/Patient/${created.id}`).set('If-Modified-Since', later);
    expect(notModified.status).toBe(304);
    const earlier = new Date(Date.now() - 3_600_000).toUTCString();
    const modified = await request(server.app).get(`/fhir/Patient/${created.id}`).set('If-Modified-Since', earlier);
    expect(modified.status).toBe(200);
  });

  it('reads each past version by vread', async () => {
    const created = await createResource(server.app, patient);
    await request(server.app)
      .put(`/fhir/Patient/${created.id}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...created, gender: 'other' })
      .expect(200);
    const v1 = await request(server.app).get(`/fhir/Patient/${created.id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.body.gender).toBe('female');
    expect(v1.headers.etag).toBe('W/"1"');
    const v2 = await request(server.app).get(`/fhir/Patient/${created.id}/_history/2`);
    expect(v2.body.gender).toBe('other');
    expect(v2.body.meta.versionId).toBe('2');
    const v3 = await request(server.app).get(`/fhir/Patient/${created.id}/_history/3`);
    expect(v3.status).toBe(404);
  });

  it('answers HEAD like GET without a body', async () => {
    const created = await createResource(server.app, patient);
    const head = await request(server.app).head(`/fhir/Patient/${created.id}`);
    expect(head.status).toBe(200);
    expect(head.headers.etag).toBe('W/"1"');
    expect(head.text).toBeUndefined();
    expect((await request(server.app).head('/fhir/Patient/not-there')).status).toBe(404);
  });

  it('supports _pretty and _format=json', async () => {
    const created = await createResource(server.app, patient);
    const pretty = await request(server.app).get(`/fhir/Patient/${created.id}?_pretty=true&_format=json`);
    expect(pretty.status).toBe(200);
    expect(pretty.text).toContain('\n  "resourceType": "Patient"');
    const compact = await request(server.app).get(`/fhir/Patient/${created.id}?_format=application/fhir%2Bjson`);
    expect(compact.text).not.toContain('\n');
  });
});

describe('update', () => {
  it('creates a new version, and checks If-Match', async () => {
    const created = await createResource(server.app, patient);
    const updated = await request(server.app)
      .put(`/fhir/Patient/${created.id}`)
      .set('Content-Type', FHIR_JSON)
      .set('If-Match', 'W/"1"')
      .send({ ...created, birthDate: '1980-02-03' });
    expect(updated.status).toBe(200);
    expect(updated.headers.etag).toBe('W/"2"');
    expect(updated.headers.location).toMatch(/\/_history\/2$/);
    expect(updated.body.birthDate).toBe('1980-02-03');
  });

  it('creates a resource with a client-chosen id (update as create)', async () => {
    const response = await request(server.app)
      .put('/fhir/MedicationRequest/rx-client-1')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'MedicationRequest',
        id: 'rx-client-1',
        status: 'active',
        intent: 'order',
        subject: { reference: 'Patient/p1' },
        medicationCodeableConcept: { text: 'sertraline 50 mg' },
      } satisfies MedicationRequest);
    expect(response.status).toBe(201);
    expect(response.body.meta.versionId).toBe('1');
    expect(response.headers.location).toMatch(/\/fhir\/MedicationRequest\/rx-client-1\/_history\/1$/);
  });

  it('makes no new version when the content is unchanged', async () => {
    const created = await createResource(server.app, patient);
    const again = await request(server.app)
      .put(`/fhir/Patient/${created.id}`)
      .set('Content-Type', FHIR_JSON)
      .send(created);
    expect(again.status).toBe(200);
    expect(again.body.meta.versionId).toBe('1');
    const history = await request(server.app).get(`/fhir/Patient/${created.id}/_history`);
    expect(history.body.entry).toHaveLength(1);
  });
});

describe('delete', () => {
  it('deletes as a new version: read answers 410, history keeps the deletion, vread of it is 410', async () => {
    const created = await createResource(server.app, patient);
    const deleted = await request(server.app).delete(`/fhir/Patient/${created.id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.resourceType).toBe('OperationOutcome');
    expect(deleted.headers.etag).toBe('W/"2"');

    const read = await request(server.app).get(`/fhir/Patient/${created.id}`);
    expect(read.status).toBe(410);
    expect(read.body.issue[0].code).toBe('deleted');

    const history = await request(server.app).get(`/fhir/Patient/${created.id}/_history`);
    expect(history.body.entry.map((e: { request: { method: string } }) => e.request.method)).toEqual([
      'DELETE',
      'POST',
    ]);
    expect((await request(server.app).get(`/fhir/Patient/${created.id}/_history/2`)).status).toBe(410);
    expect((await request(server.app).get(`/fhir/Patient/${created.id}/_history/1`)).status).toBe(200);

    const again = await request(server.app).delete(`/fhir/Patient/${created.id}`);
    expect(again.status).toBe(200);
    const historyAfter = await request(server.app).get(`/fhir/Patient/${created.id}/_history`);
    expect(historyAfter.body.entry).toHaveLength(2);
  });

  it('answers 204 to Prefer: return=minimal, and a PUT brings a deleted resource back as a new version', async () => {
    const created = await createResource(server.app, patient);
    const deleted = await request(server.app).delete(`/fhir/Patient/${created.id}`).set('Prefer', 'return=minimal');
    expect(deleted.status).toBe(204);
    const revived = await request(server.app)
      .put(`/fhir/Patient/${created.id}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...created, meta: undefined });
    expect(revived.status).toBe(201);
    expect(revived.body.meta.versionId).toBe('3');
  });

  it('checks If-Match on delete', async () => {
    const created = await createResource(server.app, patient);
    const wrong = await request(server.app).delete(`/fhir/Patient/${created.id}`).set('If-Match', 'W/"5"');
    expect(wrong.status).toBe(412);
    expect((await request(server.app).get(`/fhir/Patient/${created.id}`)).status).toBe(200);
    const right = await request(server.app).delete(`/fhir/Patient/${created.id}`).set('If-Match', 'W/"1"');
    expect(right.status).toBe(200);
  });
});
