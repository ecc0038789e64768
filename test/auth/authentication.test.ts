import type { CapabilityStatement, OperationOutcome } from '@medplum/fhirtypes';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT } from 'jose';
import request from 'supertest';
import { devSecretPath } from '../../src/auth/dev-secret';
import { startTestServer, type TestServer } from '../support/server';
import { TEST_SECRET, tokenFor } from '../support/tokens';

const now = () => Math.floor(Date.now() / 1000);

function expectLogin(response: request.Response, invalidToken: boolean): void {
  expect(response.status).toBe(401);
  const challenge = response.headers['www-authenticate'] as string;
  expect(challenge).toMatch(/^Bearer realm="meds-fhir"/);
  expect(challenge.includes('error="invalid_token"')).toBe(invalidToken);
  const body = response.body as OperationOutcome;
  expect(body.resourceType).toBe('OperationOutcome');
  expect(body.issue?.[0].code).toBe('login');
}

describe('tokens verified with AUTH_HS256_SECRET (with issuer and audience)', () => {
  let server: TestServer;
  const issuer = 'https://idp.meds-fhir.test';
  const audience = 'https://meds-fhir.test/fhir';
  beforeAll(async () => {
    server = await startTestServer(__filename, {
      auth: { mode: 'hs256', hs256Secret: TEST_SECRET, issuer, audience, accessTokenSeconds: 300 },
    });
  });
  afterAll(async () => server.close());

  const good = { scope: 'system/*.rs', iss: issuer, aud: audience };
  const get = (authorization?: string) => {
    const call = request(server.rawApp).get('/fhir/Patient');
    return authorization === undefined ? call : call.set('Authorization', authorization);
  };

  it('accepts a valid token', async () => {
    expect((await get(`Bearer ${await tokenFor(good)}`)).status).toBe(200);
  });

  it('answers 401 without error="invalid_token" when there is no token', async () => {
    expectLogin(await get(), false);
    expectLogin(await get(''), false);
  });

  it.each([
    ['a malformed header', async () => 'Basic dXNlcjpwYXNz'],
    ['a malformed token', async () => 'Bearer not.a.jwt'],
    ['an expired token', async () => `Bearer ${await tokenFor({ ...good, exp: now() - 120, iat: now() - 600 })}`],
    ['a token not valid yet', async () => `Bearer ${await tokenFor({ ...good, nbf: now() + 600 })}`],
    ['a token signed with another secret', async () => `Bearer ${await tokenFor(good, 'x'.repeat(40))}`],
    ['an unsigned token (alg none)', async () => `Bearer ${new UnsecuredJWT(good).setExpirationTime('1h').encode()}`],
    ['a token of another issuer', async () => `Bearer ${await tokenFor({ ...good, iss: 'https://evil.test' })}`],
    ['a token for another audience', async () => `Bearer ${await tokenFor({ ...good, aud: 'https://other.test' })}`],
    [
      'a token signed HS512',
      async () =>
        `Bearer ${await new SignJWT(good)
          .setProtectedHeader({ alg: 'HS512' })
          .setExpirationTime('1h')
          .sign(new TextEncoder().encode(TEST_SECRET))}`,
    ],
  ])('answers 401 invalid_token for %s, without echoing it', async (_name, make) => {
    const authorization = await make();
    const response = await get(authorization);
    expectLogin(response, true);
    const token = authorization.replace(/^\S+\s+/, '');
    expect(JSON.stringify(response.body)).not.toContain(token);
    expect(response.headers['www-authenticate']).not.toContain(token);
  });

  it('refuses before revealing anything: an unknown path or method is 401 too', async () => {
    expectLogin(await request(server.rawApp).get('/fhir/NoSuchType/1'), false);
    expectLogin(await request(server.rawApp).delete('/fhir/metadata'), false);
  });

  it('serves metadata and the SMART configuration without a token', async () => {
    const metadata = await request(server.rawApp).get('/fhir/metadata');
    expect(metadata.status).toBe(200);
    const security = (metadata.body as CapabilityStatement).rest?.[0].security;
    expect(security?.service?.[0].coding?.[0].code).toBe('SMART-on-FHIR');
    expect(security?.cors).toBe(false);
    const smart = await request(server.rawApp).get('/fhir/.well-known/smart-configuration');
    expect(smart.status).toBe(200);
    expect(smart.body.capabilities).toEqual(expect.arrayContaining(['permission-v2', 'permission-v1']));
    expect(smart.body.scopes_supported).toContain('system/*.cruds');
    expect((await request(server.rawApp).get('/healthz')).status).toBe(200);
  });

  it('answers 403 forbidden when the scopes do not grant the interaction', async () => {
    const token = `Bearer ${await tokenFor({ ...good, scope: 'system/Observation.rs' })}`;
    const refused = await request(server.rawApp).get('/fhir/Patient').set('Authorization', token);
    expect(refused.status).toBe(403);
    expect((refused.body as OperationOutcome).issue?.[0].code).toBe('forbidden');
    const write = await request(server.rawApp)
      .post('/fhir/Observation')
      .set('Authorization', token)
      .set('Content-Type', 'application/fhir+json')
      .send({ resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    expect(write.status).toBe(403);
    const openid = `Bearer ${await tokenFor({ ...good, scope: 'openid fhirUser launch/patient offline_access' })}`;
    expect((await request(server.rawApp).get('/fhir/Observation').set('Authorization', openid)).status).toBe(403);
  });

  it('sends security headers and no X-Powered-By on every answer', async () => {
    for (const response of [await get(), await request(server.rawApp).get('/fhir/metadata')]) {
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['content-security-policy']).toContain("default-src 'none'");
      expect(response.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('answers CORS for no origin by default', async () => {
    const preflight = await request(server.rawApp)
      .options('/fhir/Patient')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'GET');
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('CORS for configured origins', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(`${__filename}-cors`, { corsOrigins: ['https://clinic.example'] });
  });
  afterAll(async () => server.close());

  it('answers the preflight of an allowed origin, with Authorization allowed', async () => {
    const preflight = await request(server.rawApp)
      .options('/fhir/Patient')
      .set('Origin', 'https://clinic.example')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization,content-type');
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://clinic.example');
    expect(preflight.headers['access-control-allow-headers']).toMatch(/Authorization/);
    const actual = await request(server.app).get('/fhir/Patient').set('Origin', 'https://clinic.example');
    expect(actual.headers['access-control-allow-origin']).toBe('https://clinic.example');
    expect(actual.headers['access-control-expose-headers']).toMatch(/ETag/);
  });

  it('gives another origin no CORS headers', async () => {
    const other = await request(server.app).get('/fhir/Patient').set('Origin', 'https://evil.example');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const metadata = await request(server.rawApp).get('/fhir/metadata');
    expect((metadata.body as CapabilityStatement).rest?.[0].security?.cors).toBe(true);
  });
});

describe('AUTH=off', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(`${__filename}-off`, { auth: { mode: 'off', accessTokenSeconds: 300 } });
  });
  afterAll(async () => server.close());

  it('serves everything without a token, and says so on every answer', async () => {
    const response = await request(server.rawApp).get('/fhir/Patient');
    expect(response.status).toBe(200);
    expect(response.headers.warning).toMatch(/^299 meds-fhir "Authorization is off/);
    expect((await request(server.rawApp).get('/healthz')).headers.warning).toMatch(/Authorization is off/);
  });
});

describe('development mode', () => {
  let server: TestServer;
  const dataDir = mkdtempSync(join(tmpdir(), 'meds-fhir-dev-auth-'));
  beforeAll(async () => {
    server = await startTestServer(`${__filename}-dev`, {
      dataDir,
      auth: { mode: 'development', accessTokenSeconds: 300 },
    });
  });
  afterAll(async () => server.close());

  it('keeps a secret readable by its owner only in DATA_DIR, and npm run token signs with it', async () => {
    const path = devSecretPath(dataDir);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8').trim().length).toBeGreaterThanOrEqual(32);
    const env = { ...process.env, DATA_DIR: dataDir, AUTH_HS256_SECRET: '', AUTH_ISSUER: '', AUTH_AUDIENCE: '' };
    const token = execFileSync(
      process.execPath,
      [join(__dirname, '..', '..', 'scripts', 'token.mjs'), '--scope', 'patient/*.rs', '--patient', 'dev-p1'],
      { env, encoding: 'utf8' },
    ).trim();
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({ scope: 'patient/*.rs', patient: 'dev-p1' });
    const response = await request(server.rawApp).get('/fhir/Patient/dev-p1').set('Authorization', `Bearer ${token}`);
    expect(response.status).toBe(404);
    const elsewhere = await request(server.rawApp).get('/fhir/Practitioner').set('Authorization', `Bearer ${token}`);
    expect(elsewhere.status).toBe(200);
    // A token signed with the test secret is not one of this server's.
    expectLogin(
      await request(server.rawApp)
        .get('/fhir/Patient')
        .set('Authorization', `Bearer ${await tokenFor({ scope: 'system/*.rs' })}`),
      true,
    );
  });
});
