import type { Bundle, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { FHIR_JSON, putAll, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';

/** Who a user/ token reaches beyond care teams, and scopes restricted by a query. */
let server: TestServer;
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';

const observation = (id: string, patient: string, category: string): Resource =>
  ({
    resourceType: 'Observation',
    id,
    status: 'final',
    category: [{ coding: [{ system: CATEGORY, code: category }] }],
    code: { text: id },
    subject: { reference: `Patient/${patient}` },
  }) as Resource;

beforeAll(async () => {
  server = await startTestServer(__filename);
  const resources: Resource[] = [
    { resourceType: 'Practitioner', id: 'gp-1' },
    { resourceType: 'Patient', id: 'reach-a', generalPractitioner: [{ reference: 'Practitioner/gp-1' }] },
    { resourceType: 'Patient', id: 'reach-b' },
    { resourceType: 'RelatedPerson', id: 'rp-1', patient: { reference: 'Patient/reach-b' } },
    observation('obs-a-lab', 'reach-a', 'laboratory'),
    observation('obs-a-vital', 'reach-a', 'vital-signs'),
    observation('obs-b-lab', 'reach-b', 'laboratory'),
  ];
  await putAll(server.app, resources);
});
afterAll(async () => server.close());

async function idsSeen(claims: Record<string, unknown>, path: string): Promise<string[]> {
  const response = await request(server.rawApp)
    .get(path)
    .set('Authorization', `Bearer ${await tokenFor(claims)}`);
  expect(response.status).toBe(200);
  return ((response.body as Bundle).entry ?? []).map((e) => e.resource?.id as string).sort();
}

it('reaches the patients whose general practitioner the user is', async () => {
  const claims = { scope: 'user/*.rs', fhirUser: 'Practitioner/gp-1' };
  expect(await idsSeen(claims, '/fhir/Patient')).toEqual(['reach-a']);
  expect(await idsSeen(claims, '/fhir/Observation')).toEqual(['obs-a-lab', 'obs-a-vital']);
});

it("reaches a RelatedPerson's patient, and a Patient user itself", async () => {
  expect(await idsSeen({ scope: 'user/*.rs', fhirUser: 'RelatedPerson/rp-1' }, '/fhir/Observation')).toEqual([
    'obs-b-lab',
  ]);
  expect(await idsSeen({ scope: 'user/*.rs', fhirUser: 'Patient/reach-a' }, '/fhir/Observation')).toEqual([
    'obs-a-lab',
    'obs-a-vital',
  ]);
});

it('limits a query-restricted scope to what its query matches: searches, reads and totals', async () => {
  const claims = { scope: `system/Observation.rs?category=${CATEGORY}|laboratory` };
  expect(await idsSeen(claims, '/fhir/Observation')).toEqual(['obs-a-lab', 'obs-b-lab']);
  const token = `Bearer ${await tokenFor(claims)}`;
  expect((await request(server.rawApp).get('/fhir/Observation/obs-a-vital').set('Authorization', token)).status).toBe(
    404,
  );
  expect((await request(server.rawApp).get('/fhir/Observation/obs-a-lab').set('Authorization', token)).status).toBe(
    200,
  );
  const count = await request(server.rawApp).get('/fhir/Observation?_summary=count').set('Authorization', token);
  expect(count.body.total).toBe(2);
  // Two scopes on one type: the union of what each grants.
  const both = {
    scope: `patient/Observation.rs?category=${CATEGORY}|vital-signs patient/Observation.rs?category=${CATEGORY}|laboratory`,
    patient: 'reach-a',
  };
  expect(await idsSeen(both, '/fhir/Observation')).toEqual(['obs-a-lab', 'obs-a-vital']);
  const vitalOnly = { scope: `patient/Observation.rs?category=${CATEGORY}|vital-signs`, patient: 'reach-a' };
  expect(await idsSeen(vitalOnly, '/fhir/Observation')).toEqual(['obs-a-vital']);
});

it("applies a care-team change to the very next request (the decision's look-ups are not served stale)", async () => {
  const team = {
    resourceType: 'CareTeam',
    id: 'reach-team',
    status: 'active',
    subject: { reference: 'Patient/reach-b' },
    participant: [{ member: { reference: 'Practitioner/gp-2' } }],
  };
  const put = (body: object) =>
    request(server.app).put('/fhir/CareTeam/reach-team').set('Content-Type', FHIR_JSON).send(body);
  const claims = { scope: 'user/*.rs', fhirUser: 'Practitioner/gp-2' };
  expect(await idsSeen(claims, '/fhir/Observation')).toEqual([]);
  expect((await put(team)).status).toBe(201);
  expect(await idsSeen(claims, '/fhir/Observation')).toEqual(['obs-b-lab']);
  expect(await idsSeen(claims, '/fhir/Observation')).toEqual(['obs-b-lab']);
  expect((await put({ ...team, status: 'inactive' })).status).toBe(200);
  expect(await idsSeen(claims, '/fhir/Observation')).toEqual([]);
  expect(
    (
      await put({
        ...team,
        participant: [{ member: { reference: 'Practitioner/gp-2' }, period: { end: '2020-01-01' } }],
        status: 'active',
      })
    ).status,
  ).toBe(200);
  expect(await idsSeen(claims, '/fhir/Observation')).toEqual([]);
});

it('refuses a paging token minted for another requester (search and history)', async () => {
  const admin = await request(server.app).get('/fhir/Observation?_count=1');
  const next = (admin.body as Bundle).link?.find((l) => l.relation === 'next')?.url as string;
  expect(next).toBeDefined();
  const other = `Bearer ${await tokenFor({ scope: 'system/*.rs' })}`;
  const path = new URL(next).pathname + new URL(next).search;
  expect((await request(server.rawApp).get(path).set('Authorization', other)).status).toBe(400);
  expect((await request(server.app).get(path)).status).toBe(200);
  const history = await request(server.app).get('/fhir/Observation/_history?_count=1');
  const historyNext = (history.body as Bundle).link?.find((l) => l.relation === 'next')?.url as string;
  const historyPath = new URL(historyNext).pathname + new URL(historyNext).search;
  expect((await request(server.rawApp).get(historyPath).set('Authorization', other)).status).toBe(400);
  expect((await request(server.app).get(historyPath)).status).toBe(200);
});
