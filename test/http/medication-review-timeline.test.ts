import type { Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { ACT_CODE } from '../../src/auth/labels';
import { renamed, scenario } from '../findings/support';
import { putAll, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';

// What the clinician page's timeline reads from $medication-review: counted supplies, gaps, MME, and
// whether the access rules withheld records.

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
  const part2 = { meta: { security: [{ system: ACT_CODE, code: '42CFRPart2' }] } };
  await putAll(server.app, [
    ...scenario('late-refill'),
    ...scenario('opioid-benzodiazepine'),
    ...renamed('on-track', 'p2-review').map((r) =>
      r.resourceType === 'MedicationDispense' ? ({ ...r, ...part2 } as Resource) : r,
    ),
  ]);
});
afterAll(async () => server.close());

const QUERY = { date: '2026-06-30', periodStart: '2026-01-01', periodEnd: '2026-06-30' };
const part = (p: ParametersParameter, name: string) => p.part?.find((x) => x.name === name);
const days = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 86_400_000 + 1;

async function review(patient: string, authorization?: string): Promise<Parameters> {
  const call = request(authorization ? server.rawApp : server.app).get(`/fhir/Patient/${patient}/$medication-review`);
  if (authorization) call.set('Authorization', authorization);
  const response = await call.query(QUERY);
  expect(response.status).toBe(200);
  return response.body as Parameters;
}

describe('$medication-review for a timeline', () => {
  it('lists the supplies counted after shifting and the gaps, which add up to the uncovered days', async () => {
    const out = await review('late-refill');
    const statins = (out.parameter ?? []).find(
      (p) => p.name === 'adherence' && part(p, 'medicationClass')?.valueCoding?.code === 'statins',
    ) as ParametersParameter;
    const supplies = (statins.part ?? []).filter((p) => p.name === 'supply');
    const gaps = (statins.part ?? []).filter((p) => p.name === 'gap');
    expect(supplies.length).toBeGreaterThan(1);
    for (const s of supplies) {
      expect(part(s, 'reference')?.valueReference?.reference).toMatch(/^MedicationDispense\/late-refill-statin-/);
      expect(String(part(s, 'start')?.valueDate) >= String(part(s, 'fillDate')?.valueDate)).toBe(true);
    }
    // The statin ran out on 2026-06-15 (the scenario's README): one gap to the end of the period.
    expect(gaps.map((g) => [part(g, 'start')?.valueDate, part(g, 'end')?.valueDate])).toContainEqual([
      '2026-06-16',
      '2026-06-30',
    ]);
    const uncovered = gaps.reduce((n, g) => n + days(part(g, 'start')!.valueDate!, part(g, 'end')!.valueDate!), 0);
    expect(uncovered).toBe(part(statins, 'daysInPeriod')!.valueInteger! - part(statins, 'daysCovered')!.valueInteger!);
  });

  it('gives the daily MME of the active opioid prescriptions', async () => {
    const mme = (await review('opioid-benzodiazepine')).parameter?.find((p) => p.name === 'mme');
    expect(part(mme!, 'total')?.valueDecimal).toBe(30);
    const requests = (mme?.part ?? []).filter((p) => p.name === 'request');
    expect(requests.map((r) => part(r, 'reference')?.valueReference?.reference)).toEqual([
      'MedicationRequest/opioid-benzodiazepine-rx-oxy',
    ]);
    expect((await review('late-refill')).parameter?.some((p) => p.name === 'mme')).toBe(false);
  });

  it('says records were withheld when the access rules hid some, and only then', async () => {
    const clinician = `Bearer ${await tokenFor({ sub: 'nurse', scope: 'system/*.rs' })}`;
    const cleared = `Bearer ${await tokenFor({ sub: 'counsellor', scope: 'system/*.rs', clearance: ['42CFRPart2'] })}`;
    const withheld = (out: Parameters) => out.parameter?.find((p) => p.name === 'withheld')?.valueBoolean;
    const hidden = await review('p2-review', clinician);
    expect(withheld(hidden)).toBe(true);
    // Without the Part 2 fills the buprenorphine class has nothing counted.
    expect(hidden.parameter?.some((p) => p.name === 'adherence')).toBe(false);
    expect(withheld(await review('p2-review', cleared))).toBeUndefined();
    expect(withheld(await review('p2-review'))).toBeUndefined();
    expect(withheld(await review('late-refill', clinician))).toBeUndefined();
  });
});
