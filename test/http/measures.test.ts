import type { MeasureReport, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { expectOutcome, FHIR_JSON, putAll, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';
import {
  countsOf,
  evaluate,
  PERIOD,
  patientRecords,
  refills,
  strataOf,
  subjectsOf,
  type PatientSpec,
} from '../support/measures';

/**
 * Population reports over hand-computed populations: each patient below sits on one side of a threshold
 * of its measure, and the expected counts are worked out by hand in the comments.
 */

let server: TestServer;

const adherentStatin = refills('atorvastatin', 0, 13, 30);

/** PDC statins. Period 2025 (days 0..364); the index fill must be on day 273 or earlier. */
const STATINS: PatientSpec[] = [
  { id: 'sta-01', fills: refills('atorvastatin', 0, 13, 30, 30, 'dr-b') }, // PDC 1 → numerator
  { id: 'sta-02', gender: 'male', fills: refills('atorvastatin', 273, 3, 30) }, // index 91 days before the end: 90/92 → numerator
  { id: 'sta-03', fills: refills('atorvastatin', 274, 3, 30) }, // index 90 days before the end → not in the population
  { id: 'sta-04', fills: [{ drug: 'atorvastatin', day: 0, days: 365 }] }, // one fill → not in the population
  {
    id: 'sta-05',
    fills: [
      { drug: 'atorvastatin', day: 0, days: 30 },
      { drug: 'atorvastatin', day: 0, days: 30 },
    ],
  }, // one date
  {
    id: 'sta-06',
    fills: [
      { drug: 'atorvastatin', day: 0, days: 100, prescriber: 'dr-b' },
      { drug: 'atorvastatin', day: 100, days: 100, prescriber: 'dr-b' },
      { drug: 'atorvastatin', day: 200, days: 92, prescriber: 'dr-b' },
    ],
  }, // 292/365 = 80.0% → numerator
  {
    id: 'sta-07',
    fills: [
      { drug: 'atorvastatin', day: 181, days: 100 },
      { drug: 'atorvastatin', day: 281, days: 47 },
    ],
  }, // 147/184 = 79.9% → denominator only
  {
    id: 'sta-08',
    gender: 'male',
    fills: [
      { drug: 'atorvastatin', day: 180, days: 100 },
      { drug: 'atorvastatin', day: 280, days: 48 },
    ],
  }, // 148/185 = 80.0% → numerator
  { id: 'sta-09', fills: refills('atorvastatin', 0, 13, 30, 30, 'dr-b'), conditions: ['esrd'] }, // ESRD (SNOMED) → excluded
  { id: 'sta-10', fills: adherentStatin, conditions: ['esrdIcd'] }, // ESRD (ICD-10-CM N18.6) → excluded
  { id: 'sta-11', fills: adherentStatin, conditions: ['dialysis'] }, // dialysis (Z99.2) → excluded
  { id: 'sta-12', fills: adherentStatin, conditions: ['ckd4'] }, // CKD stage 4 is no exclusion → numerator
  { id: 'sta-13', fills: refills('atorvastatin', 0, 2, 30, 100), conditions: ['hospice'] }, // hospice → excluded
  { id: 'sta-14', birthDate: '2008-06-01', fills: adherentStatin }, // 17 at the period end → not in the population
  { id: 'sta-15', birthDate: '2007-12-31', fills: adherentStatin }, // 18 on the last day → numerator
  {
    id: 'sta-16',
    gender: 'male',
    fills: [
      { drug: 'atorvastatin', day: 0, days: 180 },
      { drug: 'atorvastatin', day: 90, days: 112 },
    ],
  }, // same drug: the refill shifts to day 180, 292/365 → numerator
  {
    id: 'sta-17',
    fills: [
      { drug: 'atorvastatin', day: 0, days: 180 },
      { drug: 'simvastatin', day: 90, days: 112 },
    ],
  }, // different drugs overlap without shifting: 202/365 → denominator only
  {
    id: 'sta-18',
    fills: [
      { drug: 'atorvastatin', day: -30, days: 60 },
      { drug: 'atorvastatin', day: 200, days: 30 },
    ],
  }, // the fill before the period does not count: one fill → not in the population
  { id: 'sta-19', part2: true, fills: adherentStatin }, // Part 2 records → numerator, for cleared requesters only
  { id: 'sta-20', fills: refills('lisinopril', 0, 13, 30) }, // no statin → not in the population
  { id: 'sta-21', fills: refills('atorvastatin', 0, 2, 30, 100, 'dr-b') }, // 60/365 → denominator only
  {
    id: 'sta-22',
    fills: [
      { drug: 'atorvastatin', day: 0, days: 200 },
      { drug: 'atorvastatin', day: 200, days: 165, notDispensed: true },
    ],
  }, // the second prescription was never dispensed: one claim → not in the population (PQA counts claims)
];

const oxy = (day: number, days: number) => ({ drug: 'oxycodone10' as const, day, days });
const alp = (day: number, days: number) => ({ drug: 'alprazolam' as const, day, days });
const concurrent = [oxy(0, 30), oxy(30, 30), alp(0, 30), alp(30, 30)];

/** COB: opioids on days 0..59 in most cases; the numerator needs two benzodiazepine dates and 30 days of overlap. */
const COB: PatientSpec[] = [
  { id: 'cob-01', fills: concurrent }, // overlap 60 → numerator
  { id: 'cob-02', fills: [oxy(0, 7), oxy(10, 8)] }, // 15 days' supply → denominator, no benzodiazepine
  { id: 'cob-03', fills: [oxy(0, 7), oxy(10, 7)] }, // 14 days' supply → not in the population
  { id: 'cob-04', fills: [oxy(0, 30)] }, // one opioid fill → not in the population
  { id: 'cob-05', fills: [oxy(0, 30), oxy(0, 30)] }, // one date → not in the population
  { id: 'cob-06', fills: [oxy(0, 30), oxy(30, 30), alp(30, 15), alp(45, 15)] }, // overlap 30 (days 30..59) → numerator
  { id: 'cob-07', fills: [oxy(0, 30), oxy(30, 30), alp(31, 15), alp(46, 15)] }, // overlap 29 (days 31..59) → denominator only
  { id: 'cob-08', fills: [oxy(0, 30), oxy(30, 30), alp(0, 60)] }, // one benzodiazepine fill → denominator only
  { id: 'cob-09', fills: [oxy(0, 30), oxy(30, 30), alp(0, 30), alp(0, 30)] }, // benzodiazepines on one date → denominator only
  { id: 'cob-10', fills: concurrent, conditions: ['cancer'] }, // C50.911 → excluded
  { id: 'cob-11', fills: concurrent, conditions: ['benignNeoplasm'] }, // D24.1 is benign → numerator
  { id: 'cob-12', fills: concurrent, conditions: ['sickleCell'] }, // D57.1 → excluded
  { id: 'cob-13', fills: concurrent, conditions: ['sickleTrait'] }, // D57.3 (trait) is no exclusion → numerator
  { id: 'cob-14', fills: concurrent, conditions: ['hospice'] }, // hospice → excluded
  { id: 'cob-15', fills: concurrent, conditions: ['cancerSct'] }, // SNOMED malignant neoplastic disease → excluded
  { id: 'cob-16', birthDate: '2008-06-01', fills: concurrent }, // 17 → not in the population
  { id: 'cob-17', fills: [alp(0, 30), alp(30, 30)] }, // no opioid → not in the population
  {
    id: 'cob-18',
    fills: [oxy(0, 10), { drug: 'morphine15', day: 5, days: 10 }],
  }, // two opioid drugs, 20 days → denominator, no benzodiazepine
  {
    id: 'cob-19',
    fills: [oxy(0, 30), oxy(30, 30), alp(0, 30), { drug: 'diazepam', day: 20, days: 30 }],
  }, // two benzodiazepine drugs, days 0..49 → numerator
  { id: 'cob-20', part2: true, fills: concurrent }, // Part 2 → numerator for cleared requesters only
  { id: 'cob-21', fills: [oxy(0, 30), oxy(30, 30), alp(-60, 30), alp(-30, 30)] }, // benzodiazepines before the period → denominator only
];

beforeAll(async () => {
  server = await startTestServer(__filename);
  const resources: Resource[] = [...STATINS, ...COB].flatMap(patientRecords);
  for (let i = 0; i < resources.length; i += 200) await putAll(server.app, resources.slice(i, i + 200));
});

afterAll(async () => {
  await server.close();
});

describe('pdc-statins', () => {
  let report: MeasureReport;
  beforeAll(async () => {
    report = await evaluate(server.app, 'pdc-statins');
  });

  it('answers an R4 summary MeasureReport', () => {
    expect(report).toMatchObject({
      resourceType: 'MeasureReport',
      status: 'complete',
      type: 'summary',
      measure: 'https://meds-fhir.org/fhir/Measure/pdc-statins|1.0.0',
      period: PERIOD,
    });
  });

  it('counts the hand-computed populations', () => {
    // In: 01 02 06 07 08 09 10 11 12 13 15 16 17 19 21; excluded: 09 10 11 13; numerator: 01 02 06 08 12 15 16 19.
    expect(countsOf(report)).toEqual({
      'initial-population': 15,
      denominator: 15,
      'denominator-exclusion': 4,
      numerator: 8,
    });
    expect(report.group?.[0].measureScore?.value).toBe(0.7273);
  });

  it('stratifies by prescriber, age band, sex and drug', () => {
    expect(strataOf(report, 'prescriber')).toEqual({
      'Practitioner/dr-a': { 'initial-population': 11, denominator: 11, 'denominator-exclusion': 3, numerator: 6 },
      'Practitioner/dr-b': { 'initial-population': 4, denominator: 4, 'denominator-exclusion': 1, numerator: 2 },
    });
    expect(strataOf(report, 'age-band')).toEqual({
      '18-44': { 'initial-population': 1, denominator: 1, 'denominator-exclusion': 0, numerator: 1 },
      '45-64': { 'initial-population': 14, denominator: 14, 'denominator-exclusion': 4, numerator: 7 },
    });
    expect(strataOf(report, 'sex')).toEqual({
      female: { 'initial-population': 12, denominator: 12, 'denominator-exclusion': 4, numerator: 5 },
      male: { 'initial-population': 3, denominator: 3, 'denominator-exclusion': 0, numerator: 3 },
    });
    expect(strataOf(report, 'medication')).toEqual({
      atorvastatin: { 'initial-population': 14, denominator: 14, 'denominator-exclusion': 4, numerator: 8 },
      simvastatin: { 'initial-population': 1, denominator: 1, 'denominator-exclusion': 0, numerator: 0 },
    });
    const drB = report.group?.[0].stratifier?.[0].stratum?.find((s) => s.value?.text === 'Practitioner/dr-b');
    expect(drB?.measureScore?.value).toBe(0.6667);
  });

  it('counts dispenses only as fills: a prescription never dispensed is no claim', async () => {
    const one = await evaluate(server.app, 'pdc-statins', { subject: 'Patient/sta-22', reportType: 'subject' });
    expect(countsOf(one)['initial-population']).toBe(0);
    // The review, by contrast, lets the prescription stand in for the missing dispense.
    const review = await request(server.app).get('/fhir/Patient/sta-22/$medication-review?date=2025-12-31');
    expect(review.status).toBe(200);
    expect(JSON.stringify(review.body)).toContain('MedicationRequest/sta-22-rx1');
  });

  it('gives the same report for the same data', async () => {
    const again = await evaluate(server.app, 'pdc-statins');
    expect({ ...again, date: undefined }).toEqual({ ...report, date: undefined });
  });
});

describe('cob', () => {
  it('counts the hand-computed populations', async () => {
    const report = await evaluate(server.app, 'cob');
    // In: 01 02 06..15 18..21; excluded: 10 12 14 15; numerator: 01 06 11 13 19 20.
    expect(countsOf(report)).toEqual({
      'initial-population': 16,
      denominator: 16,
      'denominator-exclusion': 4,
      numerator: 6,
    });
    expect(report.group?.[0].measureScore?.value).toBe(0.5);
  });

  it('lists the subjects of each population (subject-list)', async () => {
    const report = await evaluate(server.app, 'cob', { reportType: 'subject-list' });
    expect(report.type).toBe('subject-list');
    expect(subjectsOf(report, 'numerator')).toEqual(['cob-01', 'cob-06', 'cob-11', 'cob-13', 'cob-19', 'cob-20']);
    expect(subjectsOf(report, 'denominator-exclusion')).toEqual(['cob-10', 'cob-12', 'cob-14', 'cob-15']);
    expect(subjectsOf(report, 'initial-population')).toHaveLength(16);
  });
});

describe('access', () => {
  it('leaves Part 2 patients out for an analyst without Part 2 clearance', async () => {
    const analyst = `Bearer ${await tokenFor({ sub: 'analyst', scope: 'system/*.rs' })}`;
    const statins = await evaluate(server.app, 'pdc-statins', {}, analyst);
    expect(countsOf(statins)).toEqual({
      'initial-population': 14,
      denominator: 14,
      'denominator-exclusion': 4,
      numerator: 7,
    });
    const cob = await evaluate(server.app, 'cob', { reportType: 'subject-list' }, analyst);
    expect(subjectsOf(cob, 'numerator')).toEqual(['cob-01', 'cob-06', 'cob-11', 'cob-13', 'cob-19']);
  });
});

describe('requests', () => {
  it('finds a Measure by its canonical url, by GET and by POST', async () => {
    const byUrl = await request(server.app)
      .get('/fhir/Measure/$evaluate-measure')
      .query({ measure: 'https://meds-fhir.org/fhir/Measure/cob', periodStart: PERIOD.start, periodEnd: PERIOD.end });
    expect(byUrl.status).toBe(200);
    expect(countsOf(byUrl.body as MeasureReport).numerator).toBe(6);
    const posted = await request(server.app)
      .post('/fhir/Measure/$evaluate-measure')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'measure', valueCanonical: 'https://meds-fhir.org/fhir/Measure/cob' },
          { name: 'periodStart', valueDate: PERIOD.start },
          { name: 'periodEnd', valueDate: PERIOD.end },
          { name: 'subject', valueString: 'Patient/cob-06' },
        ],
      });
    expect(posted.status).toBe(200);
    expect(posted.body).toMatchObject({ type: 'individual', subject: { reference: 'Patient/cob-06' } });
    expect(countsOf(posted.body as MeasureReport)).toEqual({
      'initial-population': 1,
      denominator: 1,
      'denominator-exclusion': 0,
      numerator: 1,
    });
  });

  it('refuses bad parameters with an OperationOutcome naming them', async () => {
    const missing = await request(server.app)
      .get('/fhir/Measure/cob/$evaluate-measure')
      .query({ periodEnd: PERIOD.end });
    expectOutcome(missing, 400);
    expect(missing.body.issue[0].expression).toEqual(['periodStart']);
    const posted = await request(server.app)
      .post('/fhir/Measure/cob/$evaluate-measure')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Parameters',
        parameter: [
          { name: 'periodStart', valueDate: PERIOD.start },
          { name: 'periodEnd', valueDate: '2024-12-31' },
        ],
      });
    expectOutcome(posted, 400);
    expect(posted.body.issue[0].expression).toEqual(["Parameters.parameter.where(name='periodEnd')"]);
    const reportType = await request(server.app)
      .get('/fhir/Measure/cob/$evaluate-measure')
      .query({ periodStart: PERIOD.start, periodEnd: PERIOD.end, reportType: 'everything' });
    expectOutcome(reportType, 400);
    expect(reportType.body.issue[0].expression).toEqual(['reportType']);
  });

  it('answers 404 for an unknown Measure, by id and by url', async () => {
    const byId = await request(server.app)
      .get('/fhir/Measure/no-such-measure/$evaluate-measure')
      .query({ periodStart: PERIOD.start, periodEnd: PERIOD.end });
    expectOutcome(byId, 404);
    const byUrl = await request(server.app)
      .get('/fhir/Measure/$evaluate-measure')
      .query({ measure: 'https://example.org/Measure/none', periodStart: PERIOD.start, periodEnd: PERIOD.end });
    expectOutcome(byUrl, 404);
    expect(byUrl.body.issue[0].expression).toEqual(['measure']);
  });
});
