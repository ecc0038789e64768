import type { Parameters, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import type { Express } from 'express';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { CLINICIAN_SCOPE, loadConfig } from '../../src/config';
import { exampleResources } from '../../src/examples';
import { scenario } from '../findings/support';
import { putAll, startTestServer, type TestServer } from '../support/server';
import { startIdentityProvider, type IdentityProvider } from './identity-provider';
import { describeInBrowser, launchChromium, PRACTITIONER, REVIEW_DATE, withToken } from './support';

// The clinician page as a SMART app against an identity provider (AUTH_JWKS_URI mode): standalone
// launch, authorization code with PKCE, the token kept in memory. One browser for the file.
jest.setTimeout(180_000);

let idp: IdentityProvider;
let server: TestServer;
let http: Server;
let url: string;
let browser: Browser;
let admin: Express;

beforeAll(async () => {
  idp = await startIdentityProvider({
    sub: 'okafor@example.org',
    fhirUser: `Practitioner/${PRACTITIONER}`,
    scope: CLINICIAN_SCOPE,
  });
  server = await startTestServer(__filename, {
    auth: { mode: 'jwks', jwksUri: idp.jwksUrl, issuer: idp.issuer, accessTokenSeconds: 300 },
    app: { ...loadConfig({}).app, authorizeUrl: idp.authorizeUrl, tokenUrl: idp.tokenUrl, clientId: 'clinician-page' },
  });
  admin = withToken(
    server.rawApp,
    `Bearer ${await idp.sign({ sub: 'admin', scope: 'system/*.cruds', clearance: ['*'] })}`,
  );
  const directory = exampleResources().filter((r) => ['Practitioner', 'Organization'].includes(r.resourceType));
  const team: Resource = {
    resourceType: 'CareTeam',
    id: 'team-late-refill',
    status: 'active',
    subject: { reference: 'Patient/late-refill' },
    participant: [{ member: { reference: `Practitioner/${PRACTITIONER}` } }],
  } as Resource;
  await putAll(admin, [...directory, ...scenario('late-refill'), team]);
  http = createServer(server.rawApp);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  http?.closeAllConnections();
  await new Promise((resolve) => http?.close(resolve));
  await server?.close();
  await idp?.close();
});

describeInBrowser('the clinician page as a SMART app', () => {
  it('signs in at the identity provider with PKCE and reads the FHIR API with the token it gets', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}/app/#/patient/late-refill?date=${REVIEW_DATE}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Back from the provider on the view it left for, with the code and state gone from the address.
    await page.locator('article.patient h1').waitFor();
    expect(new URL(page.url()).search).toBe('');
    expect(new URL(page.url()).hash).toBe(`#/patient/late-refill?date=${REVIEW_DATE}`);
    // The signed-in user as the FHIR API knows them (their Practitioner resource).
    expect(await page.locator('header .user').textContent()).toContain('Dr. Amara Okafor');
    const review = await request(admin)
      .get('/fhir/Patient/late-refill/$medication-review')
      .query({ date: REVIEW_DATE, periodStart: '2025-07-01', periodEnd: REVIEW_DATE });
    const statins = (review.body as Parameters).parameter?.find(
      (p) => p.name === 'adherence' && p.part?.some((x) => x.valueCoding?.code === 'statins'),
    );
    const pdc = statins?.part?.find((x) => x.name === 'pdc')?.valueDecimal;
    expect(await page.locator('table.adherence tr[data-class="statins"] td.pdc').getAttribute('data-pdc')).toBe(
      String(pdc),
    );

    expect(idp.authorizations).toHaveLength(1);
    const asked = idp.authorizations[0];
    expect(asked).toMatchObject({
      response_type: 'code',
      client_id: 'clinician-page',
      redirect_uri: `${url}/app/`,
      code_challenge_method: 'S256',
      aud: `${url}/fhir`,
      scope: CLINICIAN_SCOPE,
    });
    expect(asked.code_challenge).toMatch(/^[\w-]{43}$/);
    expect(asked.state.length).toBeGreaterThanOrEqual(16);
    expect(idp.exchanges.map((e) => e.status)).toEqual([200]);
    expect(idp.exchanges[0].form.code_verifier.length).toBeGreaterThanOrEqual(43);

    // Nothing of the sign-in stays in web storage: the token lives in the page's memory only.
    const stored = await page.evaluate(() => {
      const web = globalThis as unknown as { localStorage: { length: number }; sessionStorage: { length: number } };
      return web.localStorage.length + web.sessionStorage.length;
    });
    expect(stored).toBe(0);
    await page.close();
  });
});
