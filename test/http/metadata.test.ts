import type { CapabilityStatement } from '@medplum/fhirtypes';
import request from 'supertest';
import { resourceTypes } from '../../src/fhir/definitions';
import { startTestServer, TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

describe('metadata and health', () => {
  it('serves a CapabilityStatement for every R4 resource type with the interactions really routed', async () => {
    const response = await request(server.app).get('/fhir/metadata');
    expect(response.status).toBe(200);
    const statement = response.body as CapabilityStatement;
    expect(statement.resourceType).toBe('CapabilityStatement');
    expect(statement.fhirVersion).toBe('4.0.1');
    expect(statement.format).toContain('application/fhir+json');
    const rest = statement.rest?.[0];
    expect(rest?.resource?.map((r) => r.type)).toEqual([...resourceTypes()]);
    expect(resourceTypes().length).toBeGreaterThanOrEqual(145);
    const medicationRequest = rest?.resource?.find((r) => r.type === 'MedicationRequest');
    const codes = medicationRequest?.interaction?.map((i) => i.code).sort();
    expect(codes).toEqual(
      expect.arrayContaining([
        'create',
        'delete',
        'history-instance',
        'history-type',
        'patch',
        'read',
        'update',
        'vread',
      ]),
    );
    expect(statement.patchFormat).toEqual(['application/json-patch+json', 'application/fhir+json']);
    expect(rest?.interaction?.map((i) => i.code)).toContain('history-system');
    expect(medicationRequest?.versioning).toBe('versioned-update');
  });

  it('adds a registered operation to the statement', async () => {
    server.running.context.operations.push({
      name: 'ping',
      levels: ['system'],
      affectsState: false,
      requires: { permissions: ['r'] },
      definition: 'http://meds-fhir.test/OperationDefinition/ping',
      handle: async () => ({ status: 200, headers: {}, body: { resourceType: 'Parameters' } }),
    });
    const statement = (await request(server.app).get('/fhir/metadata')).body as CapabilityStatement;
    expect(statement.rest?.[0].operation?.map((o) => o.name)).toContain('ping');
    expect((await request(server.app).get('/fhir/$ping')).status).toBe(200);
    server.running.context.operations.pop();
  });

  it('answers /healthz and /readyz, and returns a request id (echoing a sane one)', async () => {
    expect((await request(server.app).get('/healthz')).body).toEqual({ status: 'ok' });
    const ready = await request(server.app).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const echoed = await request(server.app).get('/fhir/metadata').set('X-Request-Id', 'ehr-sync-42');
    expect(echoed.headers['x-request-id']).toBe('ehr-sync-42');
    const refused = await request(server.app).get('/fhir/metadata').set('X-Request-Id', 'bad id <script>');
    expect(refused.headers['x-request-id']).not.toBe('bad id <script>');
  });
});
