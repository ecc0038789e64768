import type { Bundle, CareTeam, DetectedIssue, Resource } from '@medplum/fhirtypes';
import pino from 'pino';
import request from 'supertest';
import { ACT_CODE } from '../../src/auth/labels';
import { CARE_TEAM_EXTENSION } from '../../src/modules/findings/model';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';
import { findingsOf, findingsOn, moveClock, renamed, settled, sync } from './support';

// Evaluations run in the background; on a loaded 2-core machine a few patients can take a while.
jest.setTimeout(180_000);

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename, findingsOn(), {
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  });
  await moveClock(server.app, '2026-06-30');
});
afterAll(async () => server.close());

const PART2 = { system: ACT_CODE, code: '42CFRPart2' };
const team = (patient: string, member: string): CareTeam => ({
  resourceType: 'CareTeam',
  id: `team-${patient}`,
  status: 'active',
  subject: { reference: `Patient/${patient}` },
  participant: [{ member: { reference: member } }],
});

describe('findings from Part 2 records', () => {
  it('carry the labels of their evidence, and are hidden from a requester without clearance', async () => {
    // The buprenorphine-style program's records: every fill is Part 2.
    const resources = renamed('late-refill', 'p2-late').map((r) =>
      r.resourceType === 'MedicationDispense' ? ({ ...r, meta: { security: [PART2] } } as Resource) : r,
    );
    await sync(server.app, resources);
    await settled(server.app);
    const issues = (await findingsOf(server.app, 'DetectedIssue', 'p2-late')) as unknown as DetectedIssue[];
    const late = issues.find((i) => i.code?.coding?.[0].code === 'late-refill');
    expect(late?.meta?.security).toEqual([PART2]);

    const uncleared = `Bearer ${await tokenFor({ sub: 'analyst', scope: 'system/*.rs' })}`;
    const searched = await request(server.rawApp)
      .get('/fhir/DetectedIssue?patient=Patient/p2-late')
      .set('Authorization', uncleared);
    expect(searched.status).toBe(200);
    expect((searched.body as Bundle).entry ?? []).toHaveLength(0);
    const read = await request(server.rawApp).get(`/fhir/DetectedIssue/${late?.id}`).set('Authorization', uncleared);
    expect([403, 404]).toContain(read.status);
    expect(JSON.stringify(read.body)).not.toContain('supply ran out');

    const cleared = `Bearer ${await tokenFor({ sub: 'counsellor', scope: 'system/*.rs', clearance: ['42CFRPart2'] })}`;
    const allowed = await request(server.rawApp).get(`/fhir/DetectedIssue/${late?.id}`).set('Authorization', cleared);
    expect(allowed.status).toBe(200);
  });

  it('carry no label when their evidence has none', async () => {
    await sync(server.app, renamed('late-refill', 'plain-late'));
    await settled(server.app);
    const issues = (await findingsOf(server.app, 'DetectedIssue', 'plain-late')) as unknown as DetectedIssue[];
    const late = issues.find((i) => i.code?.coding?.[0].code === 'late-refill');
    expect(late).toBeDefined();
    expect(late?.meta?.security).toBeUndefined();
  });
});

describe('the worklist', () => {
  beforeAll(async () => {
    await sync(server.app, [team('wl-late', 'Practitioner/wl-nurse'), ...renamed('late-refill', 'wl-late')]);
    await sync(server.app, [team('wl-missed', 'Practitioner/wl-nurse'), ...renamed('missed-follow-up', 'wl-missed')]);
    await sync(server.app, [
      team('wl-opioid', 'Practitioner/wl-nurse'),
      ...renamed('opioid-benzodiazepine', 'wl-opioid'),
    ]);
    await sync(server.app, [team('wl-other', 'Practitioner/someone-else'), ...renamed('low-pdc', 'wl-other')]);
    await settled(server.app);
  });

  const ids = (bundle: Bundle, type: string) =>
    (bundle.entry ?? []).filter((e) => e.resource?.resourceType === type).map((e) => e.resource?.id);

  it("finds the open DetectedIssues of a member's patients, most severe first, with the patient included", async () => {
    const response = await request(server.app).get(
      '/fhir/DetectedIssue?care-team=Practitioner/wl-nurse&status=preliminary,final&_sort=-priority-rank,-identified&_include=DetectedIssue:patient',
    );
    expect(response.status).toBe(200);
    const bundle = response.body as Bundle;
    const issues = (bundle.entry ?? [])
      .filter((e) => e.search?.mode === 'match')
      .map((e) => e.resource as DetectedIssue);
    expect(issues.length).toBeGreaterThan(0);
    expect(new Set(issues.map((i) => i.patient?.reference))).toEqual(new Set(['Patient/wl-late', 'Patient/wl-opioid']));
    expect(new Set(ids(bundle, 'Patient'))).toEqual(new Set(['wl-late', 'wl-opioid']));
    const rank = { high: 3, moderate: 2, low: 1 } as Record<string, number>;
    const ranks = issues.map((i) => rank[i.severity ?? 'low'] ?? 1);
    expect([...ranks].sort((a, b) => b - a)).toEqual(ranks);
    expect(ranks[0]).toBe(3);
    expect(ranks).toContain(2);
  });

  it("finds the open Tasks of a member's patients, by care-team and by the _has chain", async () => {
    const direct = await request(server.app).get(
      '/fhir/Task?care-team=Practitioner/wl-nurse&status=requested,accepted,in-progress&_sort=-priority-rank,-authored-on&_include=Task:patient',
    );
    expect(direct.status).toBe(200);
    const tasks = ids(direct.body as Bundle, 'Task');
    expect(tasks.length).toBe(2);
    expect(ids(direct.body as Bundle, 'Patient')).toEqual(['wl-missed']);
    const chained = await request(server.app).get(
      '/fhir/Task?status=requested&patient._has:CareTeam:subject:participant=Practitioner/wl-nurse',
    );
    expect(chained.status).toBe(200);
    expect(new Set(ids(chained.body as Bundle, 'Task'))).toEqual(new Set(tasks));
  });

  it('follows a care team that changes: the findings of a patient the member joins are theirs', async () => {
    const before = await request(server.app).get(
      '/fhir/DetectedIssue?care-team=Practitioner/wl-nurse&patient=wl-other',
    );
    expect((before.body as Bundle).entry ?? []).toHaveLength(0);
    const joined = await request(server.app)
      .put('/fhir/CareTeam/team-wl-other')
      .set('Content-Type', FHIR_JSON)
      .send({
        ...team('wl-other', 'Practitioner/someone-else'),
        participant: [
          { member: { reference: 'Practitioner/someone-else' } },
          { member: { reference: 'Practitioner/wl-nurse' } },
        ],
      });
    expect(joined.status).toBe(200);
    await settled(server.app);
    const after = await request(server.app).get('/fhir/DetectedIssue?care-team=Practitioner/wl-nurse&patient=wl-other');
    const found = ((after.body as Bundle).entry ?? []).map((e) => e.resource as DetectedIssue);
    expect(found.length).toBeGreaterThan(0);
    expect(
      found[0].extension?.filter((e) => e.url === CARE_TEAM_EXTENSION).map((e) => e.valueReference?.reference),
    ).toEqual(['Practitioner/someone-else', 'Practitioner/wl-nurse']);
  });
});
