import type { CapabilityStatement, MedicationDispense } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import request from 'supertest';
import { JWT_BEARER_ASSERTION } from '../../src/auth/backend-services';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';
import { PART2_LABEL } from './fixtures';

/**
 * The token endpoint wired into the server: a registered pharmacy gets a token from POST /auth/token
 * and uses it on the FHIR API; what it writes carries its registered Part 2 label.
 */
const BASE = 'http://meds-fhir.test';
let server: TestServer;
let privateKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('ES384', { extractable: true });
  privateKey = pair.privateKey;
  const dir = mkdtempSync(join(tmpdir(), 'meds-fhir-clients-'));
  const clientsFile = join(dir, 'clients.json');
  writeFileSync(
    clientsFile,
    JSON.stringify({
      clients: [
        {
          client_id: 'otp-pharmacy',
          jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES384' }] },
          scope: 'system/MedicationDispense.crs system/Patient.rs',
          labels: [PART2_LABEL],
        },
      ],
    }),
  );
  server = await startTestServer(__filename, {
    auth: { mode: 'hs256', hs256Secret: 'x'.repeat(40), clientsFile, accessTokenSeconds: 120 },
  });
});
afterAll(async () => server.close());

async function accessToken(scope: string): Promise<request.Response> {
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({
    iss: 'otp-pharmacy',
    sub: 'otp-pharmacy',
    aud: `${BASE}/auth/token`,
    jti: randomUUID(),
  })
    .setProtectedHeader({ alg: 'ES384', kid: 'k1', typ: 'JWT' })
    .setExpirationTime(now + 120)
    .sign(privateKey);
  return request(server.rawApp).post('/auth/token').type('form').send({
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: JWT_BEARER_ASSERTION,
    client_assertion: assertion,
  });
}

it('issues a token that the FHIR API accepts, and labels what the client writes', async () => {
  const issued = await accessToken('system/MedicationDispense.crs system/Observation.rs');
  expect(issued.status).toBe(200);
  expect(issued.body).toMatchObject({ token_type: 'bearer', expires_in: 120, scope: 'system/MedicationDispense.crs' });
  const authorization = `Bearer ${issued.body.access_token as string}`;

  const dispense: MedicationDispense = {
    resourceType: 'MedicationDispense',
    status: 'completed',
    medicationCodeableConcept: { text: 'methadone 10 mg/mL' },
    subject: { reference: 'Patient/otp-patient' },
    whenHandedOver: '2026-11-30',
  };
  const created = await request(server.rawApp)
    .post('/fhir/MedicationDispense')
    .set('Authorization', authorization)
    .set('Content-Type', FHIR_JSON)
    .send(dispense);
  expect(created.status).toBe(201);
  expect(created.body.meta.security).toEqual([PART2_LABEL]);
  // Its labels are its clearance: it reads back what it wrote; a client without clearance does not.
  const readBack = await request(server.rawApp)
    .get(`/fhir/MedicationDispense/${created.body.id}`)
    .set('Authorization', authorization);
  expect(readBack.status).toBe(200);
  expect(readBack.body.meta.security).toEqual([PART2_LABEL]);
  const uncleared = `Bearer ${await tokenFor({ scope: 'system/*.rs' }, 'x'.repeat(40))}`;
  expect(
    (await request(server.rawApp).get(`/fhir/MedicationDispense/${created.body.id}`).set('Authorization', uncleared))
      .status,
  ).toBe(404);

  expect((await request(server.rawApp).get('/fhir/Observation').set('Authorization', authorization)).status).toBe(403);
});

it('advertises the endpoint in the SMART configuration and the CapabilityStatement', async () => {
  const first = await accessToken('system/Patient.rs');
  expect(first.status).toBe(200);
  const smart = await request(server.rawApp).get('/fhir/.well-known/smart-configuration');
  expect(smart.body.token_endpoint).toBe(`${BASE}/auth/token`);
  expect(smart.body.token_endpoint_auth_methods_supported).toEqual(['private_key_jwt']);
  expect(smart.body.capabilities).toContain('client-confidential-asymmetric');
  const metadata = (await request(server.rawApp).get('/fhir/metadata')).body as CapabilityStatement;
  expect(JSON.stringify(metadata.rest?.[0].security?.extension)).toContain(`${BASE}/auth/token`);
  expect(
    (await request(server.rawApp).get('/fhir/Patient').set('Authorization', 'Bearer tampered.token.here')).status,
  ).toBe(401);
});
