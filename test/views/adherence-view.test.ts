import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Parameters, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { PART2_LABEL } from '../auth/fixtures';
import { adherenceOf, reviewOver } from '../support/review';
import { expectOutcome, FHIR_JSON, putAll, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';

/**
 * The shipped medication-adherence view: one row per patient and class with the PDC of the checks
 * engine, the same numbers Patient/[id]/$medication-review gives for the same day and period.
 */

const SCENARIOS = path.join(__dirname, '../fixtures/checks/scenarios');
const NAMES = ['late-refill', 'low-pdc', 'missed-follow-up', 'on-track', 'opioid-benzodiazepine'];
const scenario = (name: string) =>
  JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.resources.json`), 'utf8')) as Resource[];
const expectedOf = (name: string) =>
  JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.expected.json`), 'utf8')) as {
    review: Record<string, string>;
    expected: { adherence: Record<string, unknown>[] };
  };
const SHIPPED = JSON.parse(
  fs.readFileSync(path.join(__dirname, '../../views/ViewDefinition-medication-adherence.json'), 'utf8'),
) as Record<string, unknown> & { select: { forEach?: string }[] };

/** The on-track patient again, its buprenorphine treatment labelled as Part 2 records. */
const PART2_PATIENT = 'adh-part2';
const part2Copy = (): Resource[] =>
  (JSON.parse(JSON.stringify(scenario('on-track')).split('on-track').join(PART2_PATIENT)) as Resource[]).map((r) =>
    r.resourceType.startsWith('Medication') ? { ...r, meta: { security: [PART2_LABEL] } } : r,
  );

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
  await putAll(server.app, [...NAMES.flatMap(scenario), ...part2Copy()]);
});
afterAll(async () => server.close());

type Row = Record<string, unknown>;

/** The review's adherence as the view's columns name it. */
function asRows(patientId: string, out: Parameters): Row[] {
  const titles = new Map(
    (out.parameter ?? [])
      .filter((p) => p.name === 'adherence')
      .map((p) => {
        const coding = p.part?.find((x) => x.name === 'medicationClass')?.valueCoding;
        return [coding?.code, coding?.display] as const;
      }),
  );
  return adherenceOf(out).map((a) => ({
    patient_id: patientId,
    medication_class: a.medicationClass,
    medication_class_title: titles.get(a.medicationClass as string) ?? null,
    period_start: a.periodStart,
    period_end: a.periodEnd,
    days_in_period: a.daysInPeriod,
    days_covered: a.daysCovered,
    pdc: a.pdc,
    adherent: a.adherent,
    last_covered_day: a.lastCoveredDay ?? null,
    eligible: a.eligible,
  }));
}

async function run(query: Record<string, string>, authorization?: string): Promise<Row[]> {
  const call = request(server.app).get('/fhir/ViewDefinition/medication-adherence/$viewdefinition-run').query(query);
  const response = await (authorization ? call.set('Authorization', authorization) : call);
  expect(response.status).toBe(200);
  return JSON.parse(response.text) as Row[];
}

/** The shipped view with medicationAdherence() given a date and a period start, as constants. */
function datedView(date: string, periodStart: string): Record<string, unknown> {
  const view = JSON.parse(JSON.stringify(SHIPPED)) as typeof SHIPPED;
  delete view.id;
  view.constant = [
    { name: 'asOf', valueDate: date },
    { name: 'from', valueDate: periodStart },
  ];
  view.select[1].forEach = 'medicationAdherence(%asOf, %from)';
  return view;
}

async function runInline(view: Record<string, unknown>, patient?: string): Promise<Row[]> {
  const parameter: Record<string, unknown>[] = [{ name: 'viewResource', resource: view }];
  if (patient) parameter.push({ name: 'patient', valueReference: { reference: `Patient/${patient}` } });
  const response = await request(server.app)
    .post('/fhir/$viewdefinition-run')
    .set('Content-Type', FHIR_JSON)
    .send({ resourceType: 'Parameters', parameter });
  expect(response.status).toBe(200);
  return JSON.parse(response.text) as Row[];
}

const byPatient = (rows: Row[], id: string) => rows.filter((r) => r.patient_id === id);

describe('the medication-adherence view', () => {
  it('gives, as of the day of the run, the PDC $medication-review gives for that day, for every scenario patient', async () => {
    const rows = await run({});
    const reviewed: string[] = [];
    for (const name of [...NAMES, PART2_PATIENT]) {
      const expected = asRows(name, await reviewOver(server.app, name, {}));
      expect(byPatient(rows, name)).toEqual(expected);
      if (expected.length) reviewed.push(name);
    }
    // The static scenario data age: some patients have no fill in the last 180 days any more, but the
    // comparison must have compared rows.
    expect(reviewed.length).toBeGreaterThan(0);
    expect([...new Set(rows.map((r) => r.patient_id))].sort()).toEqual(reviewed.sort());
  });

  it('gives the scenario answers as of 2026-06-30 over 2026-01-01 .. 2026-06-30, as $medication-review does', async () => {
    const rows = await runInline(datedView('2026-06-30', '2026-01-01'));
    for (const name of NAMES) {
      const spec = expectedOf(name);
      const review = await reviewOver(server.app, name, spec.review);
      expect(adherenceOf(review)).toEqual(spec.expected.adherence);
      expect(byPatient(rows, name)).toEqual(asRows(name, review));
    }
    expect(
      byPatient(rows, 'late-refill').map((r) => [r.medication_class, r.days_covered, r.days_in_period, r.pdc]),
    ).toEqual([
      ['statins', 150, 165, 0.9091],
      ['ras-antagonists', 155, 155, 1],
    ]);
  });

  it('runs for one patient with the patient parameter, and as CSV', async () => {
    expect((await run({ patient: 'Patient/low-pdc' })).map((r) => [r.patient_id, r.medication_class])).toEqual([
      ['low-pdc', 'diabetes-non-insulin'],
    ]);
    const csv = await request(server.app)
      .get('/fhir/ViewDefinition/medication-adherence/$viewdefinition-run')
      .query({ patient: 'Patient/on-track', _format: 'csv' });
    expect(csv.status).toBe(200);
    expect(csv.text.split(/\r?\n/)[0]).toBe(
      'patient_id,medication_class,medication_class_title,period_start,period_end,days_in_period,days_covered,pdc,adherent,last_covered_day,eligible',
    );
    expect(csv.text).toContain('on-track,buprenorphine,');
  });

  it('counts only the fills the requester may read: no Part 2 class without Part 2 clearance', async () => {
    const cleared = `Bearer ${await tokenFor({ sub: 'adh-cleared', scope: 'system/*.rs', clearance: ['*'] })}`;
    const uncleared = `Bearer ${await tokenFor({ sub: 'adh-uncleared', scope: 'system/*.rs' })}`;
    const query = { patient: `Patient/${PART2_PATIENT}` };
    expect((await run(query, cleared)).map((r) => r.medication_class)).toEqual(['buprenorphine']);
    expect(await run(query, uncleared)).toEqual([]);
  });
});

describe('medicationAdherence() where it cannot be used', () => {
  it('refuses a view over another resource type, naming the expression (422), and stores nothing', async () => {
    const views = () => server.running.connection.db.collection('ViewDefinition').countDocuments({});
    const before = await views();
    const view = { ...datedView('2026-06-30', '2026-01-01'), resource: 'MedicationDispense' };
    const stored = await request(server.app).post('/fhir/ViewDefinition').set('Content-Type', FHIR_JSON).send(view);
    expectOutcome(stored, 422);
    expect(stored.body.issue.map((i: { expression?: string[] }) => i.expression?.[0])).toContain(
      'ViewDefinition.select[1].forEach',
    );
    expect(await views()).toBe(before);
  });

  it('answers 422 naming the forEach when a date argument is not a date', async () => {
    const view = JSON.parse(JSON.stringify(SHIPPED)) as typeof SHIPPED;
    delete view.id;
    view.select[1].forEach = "medicationAdherence('June 30')";
    const response = await request(server.app)
      .post('/fhir/$viewdefinition-run')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Parameters', parameter: [{ name: 'viewResource', resource: view }] });
    expectOutcome(response, 422);
    expect(response.body.issue[0].expression).toEqual(['ViewDefinition.select[1].forEach']);
    expect(response.body.issue[0].diagnostics ?? response.body.issue[0].details?.text).toMatch(/date/);
  });
});
