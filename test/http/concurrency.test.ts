import type { Bundle, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { createResource, FHIR_JSON, startTestServer, TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

const CLIENTS = 20;

describe('concurrent writers', () => {
  it('of the same version with If-Match: exactly one wins, the others get 412 and nothing is lost', async () => {
    const created = await createResource<Patient>(server.app, { resourceType: 'Patient', name: [{ family: 'Race' }] });
    const responses = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        request(server.app)
          .put(`/fhir/Patient/${created.id}`)
          .set('Content-Type', FHIR_JSON)
          .set('If-Match', 'W/"1"')
          .send({ ...created, name: [{ family: `Writer ${i}` }] }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(CLIENTS - 1);
    const winner = responses.find((r) => r.status === 200)?.body as Patient;
    const current = (await request(server.app).get(`/fhir/Patient/${created.id}`)).body as Patient;
    expect(current.meta?.versionId).toBe('2');
    expect(current.name).toEqual(winner.name);
  });

  it('without If-Match: every writer succeeds as its own version (lost races are retried on the new version)', async () => {
    const created = await createResource<Patient>(server.app, { resourceType: 'Patient', name: [{ family: 'Race' }] });
    const responses = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        request(server.app)
          .put(`/fhir/Patient/${created.id}`)
          .set('Content-Type', FHIR_JSON)
          .send({ ...created, name: [{ family: `Writer ${i}` }] }),
      ),
    );
    const succeeded = responses.filter((r) => r.status === 200);
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
    const versions = succeeded.map((r) => Number((r.body as Patient).meta?.versionId)).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: CLIENTS }, (_, i) => i + 2));
    const history = (await request(server.app).get(`/fhir/Patient/${created.id}/_history?_count=100`)).body as Bundle;
    expect(history.entry).toHaveLength(1 + succeeded.length);
    for (const r of succeeded) {
      const stored = await request(server.app).get(
        `/fhir/Patient/${created.id}/_history/${(r.body as Patient).meta?.versionId}`,
      );
      expect((stored.body as Patient).name).toEqual((r.body as Patient).name);
    }
  });

  it('racing update-as-create of one id: one creates, the rest update, never two version 1s', async () => {
    const responses = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        request(server.app)
          .put('/fhir/Patient/race-create')
          .set('Content-Type', FHIR_JSON)
          .send({ resourceType: 'Patient', id: 'race-create', name: [{ family: `Writer ${i}` }] }),
      ),
    );
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 200)).toHaveLength(CLIENTS - 1);
    const history = (await request(server.app).get('/fhir/Patient/race-create/_history?_count=100')).body as Bundle;
    expect(history.entry).toHaveLength(CLIENTS);
  });

  it('without If-Match, racing JSON Patches each apply to the version before them: none is lost', async () => {
    const created = await createResource<Patient>(server.app, { resourceType: 'Patient', name: [{ family: 'Race' }] });
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(server.app)
          .patch(`/fhir/Patient/${created.id}`)
          .set('Content-Type', 'application/json-patch+json')
          .send([{ op: 'add', path: '/name/-', value: { family: `Patch ${i}` } }]),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
    const current = (await request(server.app).get(`/fhir/Patient/${created.id}`)).body as Patient;
    expect(current.meta?.versionId).toBe('11');
    expect(current.name?.map((n) => n.family).sort()).toEqual(
      ['Race', ...Array.from({ length: 10 }, (_, i) => `Patch ${i}`)].sort(),
    );
  });
});
