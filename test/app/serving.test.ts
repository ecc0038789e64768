import type { Practitioner } from '@medplum/fhirtypes';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { UNRESTRICTED } from '../../src/auth/requester';
import { loadConfig } from '../../src/config';
import { dispatch } from '../../src/rest/router';
import { expectOutcome, startTestServer, type TestServer } from '../support/server';

// The clinician page's server side: its assets under a strict CSP, its settings, and the practitioner
// sign-in that exists in development mode only. The browser test (clinician-page.test.ts) drives the page.

let dev: TestServer;
let configured: TestServer;
const practitioner: Practitioner = {
  resourceType: 'Practitioner',
  id: 'dr-who',
  name: [{ family: 'Who', given: ['Ada'] }],
};

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meds-fhir-serving-'));
  dev = await startTestServer(`${__filename}-dev`, { auth: { mode: 'development', accessTokenSeconds: 300 }, dataDir });
  configured = await startTestServer(`${__filename}-hs256`, {
    app: {
      ...loadConfig({}).app,
      authorizeUrl: 'https://idp.example.org/authorize',
      tokenUrl: 'https://idp.example.org/token',
    },
  });
});
afterAll(async () => {
  await dev?.close();
  await configured?.close();
});

describe('the clinician page at /app/', () => {
  it('is served with a Content-Security-Policy that allows no inline script or style', async () => {
    const page = await request(configured.rawApp).get('/app/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    // The code exchange with the identity provider is the only other origin it may call.
    expect(csp).toContain("connect-src 'self' https://idp.example.org");
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
    expect(page.text).not.toMatch(/<script>|<style>|style=/);
    const script = /src="\.\/(main-[\w]+\.js)"/.exec(page.text)?.[1];
    const asset = await request(configured.rawApp).get(`/app/${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers['cache-control']).toContain('immutable');
  });

  it('redirects /app to /app/ and answers a missing asset with an OperationOutcome', async () => {
    const bare = await request(configured.rawApp).get('/app');
    expect(bare.status).toBe(301);
    expect(bare.headers.location).toBe('/app/');
    expectOutcome(await request(configured.rawApp).get('/app/nothing-here.js'), 404, { code: 'not-found' });
  });

  it('tells the page how to sign in: the identity provider where one is configured', async () => {
    const smart = await request(configured.rawApp).get('/app/config.json');
    expect(smart.body).toMatchObject({
      signIn: 'smart',
      fhirBase: '/fhir',
      clientId: 'meds-fhir-clinician',
      authorizeUrl: 'https://idp.example.org/authorize',
      tokenUrl: 'https://idp.example.org/token',
    });
    expect(smart.body.scope).toContain('user/*.rs');
    expect((await request(dev.rawApp).get('/app/config.json')).body.signIn).toBe('development');
  });

  it('refuses the development sign-in on a server that is not in development mode', async () => {
    expectOutcome(await request(configured.rawApp).get('/app/dev/practitioners'), 404, { code: 'not-found' });
    const refused = await request(configured.rawApp)
      .post('/app/dev/sign-in')
      .set('Content-Type', 'application/json')
      .send({ practitioner: 'dr-who' });
    expectOutcome(refused, 404, { code: 'not-found' });
    expect(JSON.stringify(refused.body)).not.toContain('access_token');
  });
});

describe('the development sign-in', () => {
  beforeAll(async () => {
    // Stored as the examples are, through the FHIR pipeline as the server itself: the test administrator's
    // token is signed with a secret a development-mode server does not know.
    await dispatch(
      {
        method: 'PUT',
        path: 'Practitioner/dr-who',
        query: [],
        headers: {},
        body: practitioner,
        baseUrl: 'http://meds-fhir.test/fhir',
        requestId: 'test',
        requester: UNRESTRICTED,
      },
      dev.running.context,
    );
  });

  it('lists the practitioners and signs one in with a clinician token the FHIR API accepts', async () => {
    const listed = await request(dev.rawApp).get('/app/dev/practitioners');
    expect(listed.status).toBe(200);
    expect(listed.body.practitioners).toContainEqual({ id: 'dr-who', name: 'Ada Who' });
    const signedIn = await request(dev.rawApp)
      .post('/app/dev/sign-in')
      .set('Content-Type', 'application/json')
      .send({ practitioner: 'dr-who' });
    expect(signedIn.status).toBe(200);
    expect(signedIn.headers['cache-control']).toBe('no-store');
    expect(signedIn.body).toMatchObject({ token_type: 'Bearer', fhirUser: 'Practitioner/dr-who' });
    const token = signedIn.body.access_token as string;
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
    expect(claims).toMatchObject({ sub: 'Practitioner/dr-who', fhirUser: 'Practitioner/dr-who' });
    expect(claims.clearance).toBeUndefined();
    // A user/ token: it reads what the practitioner's care teams reach (none here), and may not write patients.
    const search = await request(dev.rawApp).get('/fhir/Patient').set('Authorization', `Bearer ${token}`);
    expect(search.status).toBe(200);
    const write = await request(dev.rawApp)
      .post('/fhir/Patient')
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'application/fhir+json')
      .send({ resourceType: 'Patient' });
    expectOutcome(write, 403, { code: 'forbidden' });
  });

  it('refuses an unknown practitioner, a malformed id and a body that is not JSON', async () => {
    const send = (body: string, type = 'application/json') =>
      request(dev.rawApp).post('/app/dev/sign-in').set('Content-Type', type).send(body);
    expectOutcome(await send('{"practitioner":"nobody"}'), 404, { expression: 'practitioner' });
    expectOutcome(await send('{"practitioner":"../x"}'), 400, { expression: 'practitioner' });
    expectOutcome(await send('practitioner=dr-who', 'application/x-www-form-urlencoded'), 400, {
      expression: 'Content-Type',
    });
    expectOutcome(await send('{"practitioner":'), 400);
  });
});
