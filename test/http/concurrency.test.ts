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

  it('without If-Match: every success is a distinct version in history (409 for the losers of a race)', async () => {
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
    expect(responses.every((r) => r.status === 200 || r.status === 409)).toBe(true);
    expect(succeeded.length).toBeGreaterThanOrEqual(1);
    const versions = succeeded.map((r) => (r.body as Patient).meta?.versionId);
    expect(new Set(versions).size).toBe(versions.length);
    const history = (await request(server.app).get(`/fhir/Patient/${created.id}/_history?_count=100`)).body as Bundle;
    expect(history.entry).toHaveLength(1 + succeeded.length);
    for (const r of succeeded) {
      const stored = await request(server.app).get(
        `/fhir/Patient/${created.id}/_history/${(r.body as Patient).meta?.versionId}`,
      );
      expect((stored.body as Patient).name).toEqual((r.body as Patient).name);
    }
  });

  it('racing update-as-create of one id: one creates, the rest update or conflict, never two version 1s', async () => {
    const responses = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        request(server.app)
          .put('/fhir/Patient/race-create')
          .set('Content-Type', FHIR_JSON)
          .send({ resourceType: 'Patient', id: 'race-create', name: [{ family: `Writer ${i}` }] }),
      ),
    );
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    expect(responses.every((r) => [200, 201, 409].includes(r.status))).toBe(true);
    const history = (await request(server.app).get('/fhir/Patient/race-create/_history?_count=100')).body as Bundle;
    expect(history.entry).toHaveLength(responses.filter((r) => r.status < 300).length);
  });
});
