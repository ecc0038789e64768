import type { Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';

/** The shipped views (views/*.json) over a small record: the columns analysts rely on. */
let server: TestServer;
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const LAB = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] };
const SUBJECT = { reference: 'Patient/sv-p1' };
const BUP = { coding: [{ system: RXNORM, code: '1010600' }], text: 'buprenorphine / naloxone' };

const RECORD: Resource[] = [
  { resourceType: 'Patient', id: 'sv-p1' },
  { resourceType: 'Practitioner', id: 'sv-dr' },
  {
    resourceType: 'MedicationRequest',
    id: 'sv-rx',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: BUP,
    subject: SUBJECT,
    authoredOn: '2026-01-05',
    requester: { reference: 'Practitioner/sv-dr' },
    dosageInstruction: [{ text: 'one film daily' }],
    dispenseRequest: {
      numberOfRepeatsAllowed: 2,
      expectedSupplyDuration: { value: 28, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' },
    },
  },
  {
    resourceType: 'MedicationStatement',
    id: 'sv-missed',
    status: 'not-taken',
    statusReason: [{ text: 'ran out' }],
    medicationCodeableConcept: BUP,
    subject: SUBJECT,
    basedOn: [{ reference: 'MedicationRequest/sv-rx' }],
    effectiveDateTime: '2026-02-01',
    dateAsserted: '2026-02-02T08:00:00Z',
  },
  {
    resourceType: 'Observation',
    id: 'sv-uds',
    status: 'final',
    category: [LAB],
    code: { coding: [{ system: LOINC, code: '3879-4' }], text: 'Buprenorphine [Presence] in Urine' },
    subject: SUBJECT,
    effectiveDateTime: '2026-02-03T10:30:00Z',
    valueCodeableConcept: { coding: [{ system: SNOMED, code: '10828004' }], text: 'Positive' },
  },
  {
    resourceType: 'Observation',
    id: 'sv-uds-panel',
    status: 'final',
    category: [LAB],
    code: { coding: [{ system: LOINC, code: '58359-1' }] },
    subject: SUBJECT,
    effectiveDateTime: '2026-03-03T10:30:00Z',
    component: [
      {
        code: { coding: [{ system: LOINC, code: '3879-4' }] },
        valueCodeableConcept: { coding: [{ system: SNOMED, code: '10828004' }] },
      },
      {
        code: { coding: [{ system: LOINC, code: '19659-2' }] },
        valueCodeableConcept: { coding: [{ system: SNOMED, code: '260385009' }] },
      },
    ],
  },
  {
    resourceType: 'Observation',
    id: 'sv-glucose',
    status: 'final',
    category: [LAB],
    code: { coding: [{ system: LOINC, code: '2345-7' }] },
    subject: SUBJECT,
    effectiveDateTime: '2026-02-03T10:30:00Z',
    valueQuantity: { value: 5.4, unit: 'mmol/L' },
  },
  {
    resourceType: 'Observation',
    id: 'sv-phq9',
    status: 'final',
    code: { coding: [{ system: LOINC, code: '44261-6' }] },
    subject: SUBJECT,
    effectiveDateTime: '2026-02-04T11:00:00Z',
    valueInteger: 14,
  },
] as Resource[];

beforeAll(async () => {
  server = await startTestServer(__filename);
  for (const resource of RECORD) {
    const response = await request(server.app)
      .put(`/fhir/${resource.resourceType}/${resource.id}`)
      .set('Content-Type', FHIR_JSON)
      .send(resource);
    if (response.status >= 300) throw new Error(`${resource.id}: ${response.status} ${JSON.stringify(response.body)}`);
  }
});
afterAll(async () => {
  await server.close();
});

async function rows(view: string): Promise<Record<string, unknown>[]> {
  const response = await request(server.app)
    .get(`/fhir/ViewDefinition/${view}/$viewdefinition-run`)
    .query({ patient: 'sv-p1' });
  expect(response.status).toBe(200);
  return JSON.parse(response.text) as Record<string, unknown>[];
}

it('prescriptions', async () => {
  expect(await rows('prescriptions')).toEqual([
    expect.objectContaining({
      id: 'sv-rx',
      patient_id: 'sv-p1',
      status: 'active',
      authored_on: '2026-01-05',
      rxnorm_code: '1010600',
      medication_id: null,
      prescriber_id: 'sv-dr',
      dosage_text: 'one film daily',
      expected_supply_days: 28,
      repeats_allowed: 2,
    }),
  ]);
});

it('medication statements', async () => {
  expect(await rows('medication-statements')).toEqual([
    expect.objectContaining({
      id: 'sv-missed',
      status: 'not-taken',
      status_reason: 'ran out',
      effective_at: '2026-02-01',
      prescription_id: 'sv-rx',
      date_asserted: '2026-02-02T08:00:00Z',
    }),
  ]);
});

it('drug screens: one row per screen, one per analyte of a panel, no other laboratory results', async () => {
  const screens = await rows('drug-screens');
  const summary = screens.map((r) => [r.id, r.loinc_code, r.result_code, r.analyte_code, r.analyte_result_code]);
  expect(summary.sort()).toEqual(
    [
      ['sv-uds', '3879-4', '10828004', null, null],
      ['sv-uds-panel', '58359-1', null, '19659-2', '260385009'],
      ['sv-uds-panel', '58359-1', null, '3879-4', '10828004'],
    ].sort(),
  );
});

it('PHQ-9 scores', async () => {
  expect(await rows('phq9-scores')).toEqual([
    expect.objectContaining({ id: 'sv-phq9', patient_id: 'sv-p1', score: 14, effective_at: '2026-02-04T11:00:00Z' }),
  ]);
});
