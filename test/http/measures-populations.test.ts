import type { MeasureReport, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { expectOutcome, FHIR_JSON, putAll, startTestServer, type TestServer } from '../support/server';
import {
  countsOf,
  type Drug,
  evaluate,
  type Fill,
  LAST_DAY,
  PERIOD,
  patientRecords,
  refills,
  strataOf,
  subjectsOf,
  type PatientSpec,
} from '../support/measures';

/**
 * The other shipped Measures over hand-computed populations (pdc-statins and cob: measures.test.ts).
 * Period 2025, days 0..364; each comment says why the patient lands where it does.
 */

let server: TestServer;

/** The threshold cases every PDC measure shares, for a class with drugs `a` and `b`. */
function pdcCases(prefix: string, a: Drug, b: Drug): PatientSpec[] {
  const full = refills(a, 0, 13, 30);
  return [
    { id: `${prefix}-01`, fills: full }, // PDC 1 → numerator
    { id: `${prefix}-02`, fills: refills(a, 273, 3, 30) }, // index 91 days before the end → numerator
    { id: `${prefix}-03`, fills: refills(a, 274, 3, 30) }, // index 90 days before the end → out
    { id: `${prefix}-04`, fills: [{ drug: a, day: 0, days: 365 }] }, // one fill → out
    {
      id: `${prefix}-05`,
      fills: [
        { drug: a, day: 181, days: 100 },
        { drug: a, day: 281, days: 47 },
      ],
    }, // 147/184 = 79.9% → denominator only
    {
      id: `${prefix}-06`,
      fills: [
        { drug: a, day: 180, days: 100 },
        { drug: a, day: 280, days: 48 },
      ],
    }, // 148/185 = 80.0% → numerator
    { id: `${prefix}-07`, fills: full, conditions: ['esrd'] }, // ESRD → excluded
    { id: `${prefix}-08`, fills: full, conditions: ['hospice'] }, // hospice → excluded
    { id: `${prefix}-09`, birthDate: '2008-06-01', fills: full }, // 17 → out
    {
      id: `${prefix}-10`,
      fills: [
        { drug: a, day: 0, days: 180 },
        { drug: a, day: 90, days: 112 },
      ],
    }, // same drug shifts: 292/365 → numerator
    {
      id: `${prefix}-11`,
      fills: [
        { drug: a, day: 0, days: 180 },
        { drug: b, day: 90, days: 112 },
      ],
    }, // different drugs do not: 202/365 → denominator only
    {
      id: `${prefix}-12`,
      fills: [
        { drug: a, day: -30, days: 60 },
        { drug: a, day: 200, days: 30 },
      ],
    }, // one fill in the period → out
    { id: `${prefix}-13`, fills: refills('naltrexone', 0, 13, 30) }, // another class → out
    { id: `${prefix}-14`, fills: refills(a, 0, 2, 30, 100) }, // 60/365 → denominator only
    { id: `${prefix}-15`, fills: full, conditions: ['dialysis'] }, // dialysis → excluded
    { id: `${prefix}-16`, part2: true, fills: full }, // Part 2 → numerator
    { id: `${prefix}-17`, fills: full, conditions: ['ckd4'] }, // CKD 4 is no exclusion → numerator
    { id: `${prefix}-18`, fills: refills(b, 0, 13, 30) }, // the class's other drug → numerator
    {
      id: `${prefix}-19`,
      fills: [
        { drug: a, day: 0, days: 30 },
        { drug: a, day: 0, days: 30 },
      ],
    }, // one date → out
    { id: `${prefix}-20`, gender: 'male', fills: full }, // → numerator
  ];
}
/** Of pdcCases: in 14 (01 02 05 06 07 08 10 11 14 15 16 17 18 20), excluded 3 (07 08 15), numerator 8. */
const PDC_COUNTS = { 'initial-population': 14, denominator: 14, 'denominator-exclusion': 3, numerator: 8 };

/** PQA PDC-DR also leaves out anyone with an insulin claim in the period: a dispense of the insulin class. */
const dmFull = refills('glipizide', 0, 13, 30);
const DIABETES: PatientSpec[] = [
  ...pdcCases('dm', 'glipizide', 'glimepiride'),
  { id: 'dm-21', fills: refills('losartan', 0, 13, 30) }, // a RAS antagonist → out
  { id: 'dm-22', fills: [...dmFull, { drug: 'glargine', day: 100, days: 30 }] }, // insulin (RxNorm SCD) inside → excluded
  { id: 'dm-23', fills: [...dmFull, { drug: 'glargine', day: -1, days: 30 }] }, // insulin on 2024-12-31 only → numerator
  { id: 'dm-24', fills: [...dmFull, { drug: 'glargine', day: 0, days: 30 }] }, // insulin on the first day → excluded
  { id: 'dm-25', fills: [...dmFull, { drug: 'glargine', day: LAST_DAY, days: 30 }] }, // on the last day → excluded
  { id: 'dm-26', fills: [...dmFull, { drug: 'glargine', day: LAST_DAY + 1, days: 30 }] }, // on 2026-01-01 → numerator
  {
    id: 'dm-27',
    fills: [...dmFull, { drug: 'degludecLiraglutide', day: 200, days: 30 }],
  }, // the insulin degludec / liraglutide pen is an insulin → excluded
  { id: 'dm-28', fills: [...dmFull, { drug: 'glargineAtc', day: 50, days: 30 }] }, // insulin by ATC substance → excluded
  { id: 'dm-29', fills: [...dmFull, { drug: 'tresibaNdc', day: 50, days: 30 }] }, // insulin by package NDC → excluded
  {
    id: 'dm-30',
    fills: [...dmFull, { drug: 'glargine', day: 150, days: 30, noDaysSupply: true }],
  }, // an insulin dispense without a days' supply is a claim all the same → excluded
  { id: 'dm-31', fills: refills('glargine', 0, 13, 30) }, // insulin alone is no non-insulin fill → out
  {
    id: 'dm-32',
    fills: [...refills('glipizide', 0, 2, 30, 100), { drug: 'glargine', day: 10, days: 30 }],
  }, // 60/365 (dm-14's fills), but insulin → excluded instead of denominator only
  {
    id: 'dm-33',
    fills: [
      { drug: 'glipizide', day: 0, days: 30 },
      { drug: 'degludecLiraglutide', day: 100, days: 30 },
    ],
  }, // the pen is no second non-insulin fill: one fill → out
];
/**
 * PDC_COUNTS plus the insulin cases: in 10 more (22 23 24 25 26 27 28 29 30 32; 31 and 33 have fewer than
 * two non-insulin fills), excluded 8 more (22 24 25 27 28 29 30 32: an insulin dispense dated 2025-01-01 ..
 * 2025-12-31), numerator 2 more (23 and 26, whose insulin falls outside the period, PDC 1).
 */
const DIABETES_COUNTS = {
  'initial-population': PDC_COUNTS['initial-population'] + 10,
  denominator: PDC_COUNTS.denominator + 10,
  'denominator-exclusion': PDC_COUNTS['denominator-exclusion'] + 8,
  numerator: PDC_COUNTS.numerator + 2,
};

const entrestoFill: Fill = { drug: 'entresto', day: 200, days: 30 };
const RAS: PatientSpec[] = [
  ...pdcCases('ras', 'lisinopril', 'losartan'),
  { id: 'ras-21', fills: [...refills('lisinopril', 0, 13, 30), entrestoFill] }, // a sacubitril/valsartan fill → excluded
  { id: 'ras-22', fills: refills('entresto', 0, 13, 30) }, // sacubitril/valsartan only: in the class, excluded
];

const bup = (day: number, days: number): Fill => ({ drug: 'buprenorphine', day, days });
const OUD: PatientSpec[] = [
  { id: 'oud-01', conditions: ['oud'], fills: refills('buprenorphine', 0, 6, 30) }, // 180 days → numerator
  { id: 'oud-02', conditions: ['oud'], fills: [...refills('buprenorphine', 0, 5, 30), bup(150, 29)] }, // 179 → denominator
  { id: 'oud-03', conditions: ['oud'], fills: [bup(0, 90), bup(97, 90)] }, // gap of 7 days bridged: 187 → numerator
  { id: 'oud-04', conditions: ['oud'], fills: [bup(0, 90), bup(98, 90)] }, // gap of 8 days: two episodes of 90 → denominator
  {
    id: 'oud-05',
    conditions: ['oud'],
    fills: [bup(0, 90), { drug: 'methadone', day: 90, days: 90 }],
  }, // buprenorphine then methadone: 180 → numerator
  { id: 'oud-06', conditions: ['oud'], fills: refills('naltrexone', 0, 6, 30) }, // naltrexone 180 → numerator
  { id: 'oud-07', fills: refills('buprenorphine', 0, 12, 30) }, // no OUD diagnosis → out
  { id: 'oud-08', conditions: ['oud'] }, // no pharmacotherapy → out
  { id: 'oud-09', birthDate: '2008-06-01', conditions: ['oud'], fills: refills('buprenorphine', 0, 12, 30) }, // 17 → out
  { id: 'oud-10', conditions: ['oud'], fills: refills('buprenorphine', 200, 6, 30) }, // cut at the period end: 165 → denominator
  { id: 'oud-11', conditions: ['oud'], fills: refills('buprenorphine', 185, 6, 30) }, // days 185..364: 180 → numerator
  { id: 'oud-12', part2: true, conditions: ['oud'], fills: refills('buprenorphine', 0, 12, 30) }, // Part 2 → numerator
  { id: 'oud-13', conditions: ['oud'], fills: refills('methadone', 0, 7, 28) }, // methadone 196 → numerator
  { id: 'oud-14', conditions: ['oud'], fills: [bup(-100, 90), bup(100, 30)] }, // the earlier fill is before the period: 30 → denominator
  { id: 'oud-15', conditions: ['oud'], fills: refills('buprenorphine', 0, 6, 30, 37) }, // five 7-day gaps: 215 → numerator
  { id: 'oud-16', conditions: ['oud'], fills: [bup(0, 90), bup(60, 90)] }, // the early refill shifts: 180 → numerator
  { id: 'oud-17', conditions: ['oud'], fills: refills('oxycodone10', 0, 6, 30) }, // an opioid analgesic is no OUD treatment → out
  {
    id: 'oud-18',
    conditions: ['oud'],
    fills: [...refills('naltrexone', 0, 5, 30), { drug: 'naltrexone', day: 150, days: 29 }],
  }, // 179 → denominator
  { id: 'oud-19', conditions: ['oud'], fills: [bup(0, 86), bup(93, 86)] }, // gap of 7, 179 in all → denominator
  { id: 'oud-20', gender: 'male', conditions: ['oud'], fills: refills('buprenorphine', 0, 12, 30) }, // → numerator
];

const oxy10 = (day: number, days: number, quantity: number): Fill => ({ drug: 'oxycodone10', day, days, quantity });
/** OHD: oxycodone 10 mg is 15 MME a tablet (factor 1.5), morphine 15 mg 15 MME, oxycodone 5 mg 7.5 MME. */
const high = [oxy10(0, 30, 180), oxy10(30, 30, 180), oxy10(60, 30, 180)]; // 8100 MME over days 0..89: 90 a day
const OHD: PatientSpec[] = [
  { id: 'ohd-01', fills: high }, // 90 MME over 90 days → numerator
  { id: 'ohd-02', fills: refills('morphine15', 0, 3, 30).map((f) => ({ ...f, quantity: 178 })) }, // 8010/90 = 89 → denominator
  { id: 'ohd-03', fills: [oxy10(0, 30, 180), oxy10(30, 30, 180), oxy10(60, 29, 174)] }, // 90 a day over 89 days → denominator
  { id: 'ohd-04', fills: refills('oxycodone10', 0, 4, 30).map((f) => ({ ...f, quantity: 240 })) }, // 120 over 120 days → numerator
  { id: 'ohd-05', fills: [oxy10(0, 7, 42), oxy10(10, 7, 42)] }, // 14 days' supply → out
  { id: 'ohd-06', fills: [oxy10(0, 90, 540)] }, // one fill → out
  { id: 'ohd-07', fills: high, conditions: ['cancer'] }, // cancer → excluded
  { id: 'ohd-08', fills: high, conditions: ['hospice'] }, // hospice → excluded
  { id: 'ohd-09', fills: high, conditions: ['sickleCell'] }, // sickle cell disease → excluded
  { id: 'ohd-10', fills: [oxy10(0, 30, 270), oxy10(60, 30, 270)] }, // 8100 over days 0..89 with a gap: 90 → numerator
  { id: 'ohd-11', fills: [oxy10(0, 30, 270), oxy10(61, 30, 270)] }, // 8100 over 91 days: 89.01 → denominator
  {
    id: 'ohd-12',
    fills: refills('oxycodone5', 0, 3, 30).map((f) => ({ ...f, quantity: 360 })),
  }, // 7.5 × 1080 = 8100 over 90 days → numerator
  { id: 'ohd-13', birthDate: '2008-06-01', fills: high }, // 17 → out
  {
    id: 'ohd-14',
    fills: [
      ...refills('oxycodone10', 0, 3, 30).map((f) => ({ ...f, quantity: 120 })),
      ...refills('morphine15', 0, 3, 30).map((f) => ({ ...f, quantity: 60 })),
    ],
  }, // 60 + 30 MME a day together over 90 days → numerator
  { id: 'ohd-15', fills: [oxy10(300, 30, 180), oxy10(330, 60, 360)] }, // 90 a day but days 300..364 only: 65 → denominator
  { id: 'ohd-16', part2: true, fills: high }, // Part 2 → numerator
  { id: 'ohd-17', fills: refills('alprazolam', 0, 3, 30) }, // no opioid → out
  { id: 'ohd-18', fills: refills('buprenorphine', 0, 6, 30) }, // buprenorphine (OUD treatment) is left out → out
  { id: 'ohd-19', fills: refills('oxycodone5', 0, 12, 30) }, // 7.5 a day → denominator
  { id: 'ohd-20', fills: [oxy10(0, 8, 96), oxy10(8, 7, 84)] }, // 15 days' supply, 180 a day over 15 days → denominator
];

beforeAll(async () => {
  server = await startTestServer(__filename);
  const resources: Resource[] = [...DIABETES, ...RAS, ...OUD, ...OHD].flatMap(patientRecords);
  for (let i = 0; i < resources.length; i += 200) await putAll(server.app, resources.slice(i, i + 200));
});

afterAll(async () => {
  await server.close();
});

describe('pdc-diabetes', () => {
  it('counts the hand-computed populations', async () => {
    const report = await evaluate(server.app, 'pdc-diabetes', { reportType: 'subject-list' });
    expect(countsOf(report)).toEqual(DIABETES_COUNTS);
    // pdcCases alone: 8 / (14 - 3) = 0.7273; with the insulin cases 10 / (24 - 11) = 0.7692.
    expect(report.group?.[0].measureScore?.value).toBe(0.7692);
    expect(subjectsOf(report, 'denominator-exclusion')).toEqual(
      ['07', '08', '15', '22', '24', '25', '27', '28', '29', '30', '32'].map((n) => `dm-${n}`),
    );
    expect(subjectsOf(report, 'numerator')).toEqual(
      ['01', '02', '06', '10', '16', '17', '18', '20', '23', '26'].map((n) => `dm-${n}`),
    );
    expect(strataOf(report, 'medication')).toEqual({
      // The latest non-insulin fill decides: dm-11 (glipizide, then glimepiride) and dm-18; every insulin
      // case is on glipizide (10 more in, 8 more excluded, 23 and 26 in the numerator).
      glimepiride: { 'initial-population': 2, denominator: 2, 'denominator-exclusion': 0, numerator: 1 },
      glipizide: { 'initial-population': 22, denominator: 22, 'denominator-exclusion': 11, numerator: 9 },
    });
  });
});

describe('pdc-ras', () => {
  it('excludes sacubitril/valsartan besides ESRD and hospice', async () => {
    const report = await evaluate(server.app, 'pdc-ras', { reportType: 'subject-list' });
    // pdcCases, ras-21 and ras-22 (excluded), and dm-21: the diabetes case on losartan (numerator).
    expect(countsOf(report)).toEqual({
      'initial-population': 17,
      denominator: 17,
      'denominator-exclusion': 5,
      numerator: 9,
    });
    expect(subjectsOf(report, 'denominator-exclusion')).toEqual(['ras-07', 'ras-08', 'ras-15', 'ras-21', 'ras-22']);
    expect(subjectsOf(report, 'numerator')).toEqual([
      'dm-21',
      'ras-01',
      'ras-02',
      'ras-06',
      'ras-10',
      'ras-16',
      'ras-17',
      'ras-18',
      'ras-20',
    ]);
  });
});

describe('oud-continuity', () => {
  let report: MeasureReport;
  beforeAll(async () => {
    report = await evaluate(server.app, 'oud-continuity');
  });

  it('counts the hand-computed populations', () => {
    // In: 01..06 10..16 18 19 20; numerator: 01 03 05 06 11 12 13 15 16 20.
    expect(countsOf(report)).toEqual({ 'initial-population': 16, denominator: 16, numerator: 10 });
    expect(report.group?.[0].measureScore?.value).toBe(0.625);
  });

  it('stratifies by medication class and sex', () => {
    expect(strataOf(report, 'medication-class')).toEqual({
      buprenorphine: { 'initial-population': 12, denominator: 12, numerator: 7 },
      methadone: { 'initial-population': 2, denominator: 2, numerator: 2 },
      naltrexone: { 'initial-population': 2, denominator: 2, numerator: 1 },
    });
    expect(strataOf(report, 'sex')).toEqual({
      female: { 'initial-population': 15, denominator: 15, numerator: 9 },
      male: { 'initial-population': 1, denominator: 1, numerator: 1 },
    });
  });
});

describe('ohd', () => {
  it('counts the hand-computed populations', async () => {
    const report = await evaluate(server.app, 'ohd', { reportType: 'subject-list' });
    // In: 01 02 03 04 07..12 14 15 16 19 20; excluded: 07 08 09; numerator: 01 04 10 12 14 16. Also in,
    // below 90 MME: oud-13 (methadone, 47 a day) and oud-17 (oxycodone, 15 a day).
    expect(countsOf(report)).toEqual({
      'initial-population': 17,
      denominator: 17,
      'denominator-exclusion': 3,
      numerator: 6,
    });
    expect(subjectsOf(report, 'numerator')).toEqual(['ohd-01', 'ohd-04', 'ohd-10', 'ohd-12', 'ohd-14', 'ohd-16']);
  });
});

describe('subjects', () => {
  it('evaluates a Group of patients and one practitioner', async () => {
    await putAll(server.app, [
      {
        resourceType: 'Group',
        id: 'ohd-cohort',
        type: 'person',
        actual: true,
        member: ['ohd-01', 'ohd-02', 'ohd-05'].map((id) => ({ entity: { reference: `Patient/${id}` } })),
      },
    ]);
    const group = await evaluate(server.app, 'ohd', { subject: 'Group/ohd-cohort', reportType: 'subject-list' });
    expect(group.subject).toEqual({ reference: 'Group/ohd-cohort' });
    expect(subjectsOf(group, 'initial-population')).toEqual(['ohd-01', 'ohd-02']);
    const none = await evaluate(server.app, 'ohd', { practitioner: 'Practitioner/nobody' });
    expect(countsOf(none)['initial-population']).toBe(0);
    expect(none.group?.[0].measureScore).toBeUndefined();
    const drA = await evaluate(server.app, 'ohd', { practitioner: 'Practitioner/dr-a' });
    expect(countsOf(drA).numerator).toBe(6);
  });

  it('answers 404 for a subject that is not known, naming it', async () => {
    const response = await request(server.app)
      .get('/fhir/Measure/ohd/$evaluate-measure')
      .query({ periodStart: PERIOD.start, periodEnd: PERIOD.end, subject: 'Group/none' });
    expectOutcome(response, 404);
    expect(response.body.issue[0].expression).toEqual(['subject']);
  });
});

describe('Measure definitions', () => {
  it('refuses a Measure whose criteria are not FHIRPath, or do not parse, with 422', async () => {
    const measure = {
      resourceType: 'Measure',
      status: 'active',
      scoring: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/measure-scoring', code: 'proportion' }] },
      group: [
        {
          population: [
            {
              code: {
                coding: [
                  { system: 'http://terminology.hl7.org/CodeSystem/measure-population', code: 'initial-population' },
                ],
              },
              criteria: { language: 'text/cql', expression: 'true' },
            },
            {
              code: {
                coding: [{ system: 'http://terminology.hl7.org/CodeSystem/measure-population', code: 'numerator' }],
              },
              criteria: { language: 'text/fhirpath', expression: 'pdc(' },
            },
          ],
        },
      ],
    };
    const response = await request(server.app).post('/fhir/Measure').set('Content-Type', FHIR_JSON).send(measure);
    expectOutcome(response, 422);
    const expressions = (response.body.issue as { expression?: string[] }[]).flatMap((i) => i.expression ?? []);
    expect(expressions).toEqual(
      expect.arrayContaining([
        'Measure.group[0].population[0].criteria.language',
        'Measure.group[0].population[1].criteria.expression',
      ]),
    );
  });

  it('refuses a Measure naming a medication class the server does not have, with 422', async () => {
    const response = await request(server.app)
      .post('/fhir/Measure')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Measure',
        status: 'active',
        group: [
          {
            population: ['initial-population', 'numerator'].map((code) => ({
              code: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/measure-population', code }] },
              criteria: { language: 'text/fhirpath', expression: "fillDates('no-such-class').exists()" },
            })),
          },
        ],
      });
    expectOutcome(response, 422);
    const error = (response.body.issue as { severity: string; details: { text: string }; expression: string[] }[]).find(
      (i) => i.severity === 'error',
    );
    expect(error?.details.text).toMatch(/no-such-class/);
    expect(error?.expression).toEqual(['Measure.group']);
  });

  it('evaluates a Measure stored through the API', async () => {
    const population = (code: string, expression: string) => ({
      code: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/measure-population', code }] },
      criteria: { language: 'text/fhirpath', expression },
    });
    await putAll(server.app, [
      {
        resourceType: 'Measure',
        id: 'any-buprenorphine',
        url: 'https://example.org/Measure/any-buprenorphine',
        status: 'active',
        group: [
          {
            population: [
              population('initial-population', "fillDates('buprenorphine').exists()"),
              population('numerator', "daysSupplied('buprenorphine') >= 360"),
            ],
          },
        ],
      } as Resource,
    ]);
    const report = await evaluate(server.app, 'any-buprenorphine');
    // Every buprenorphine patient of OUD and OHD with a fill in 2025 (oud-14 has one) and ohd-18; 360 days or more: oud-07 09 12 20.
    expect(countsOf(report)).toEqual({ 'initial-population': 16, denominator: 16, numerator: 4 });
  });
});
