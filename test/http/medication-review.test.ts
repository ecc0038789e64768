import * as fs from 'node:fs';
import * as path from 'node:path';
import type {
  CapabilityStatement,
  DetectedIssue,
  Observation,
  Parameters,
  PlanDefinition,
  Resource,
  Task,
  ValueSet,
} from '@medplum/fhirtypes';
import pino from 'pino';
import request from 'supertest';
import { createServerContext } from '../../src/app-context';
import { MEDICATION_CLASS_EXTENSION } from '../../src/checks';
import { exampleResources, loadExamplesIfEmpty } from '../../src/examples';
import { createApp } from '../../src/http/app';
import { MEDICATION_REVIEW_DEFINITION } from '../../src/modules/medication-review';
import { expectOutcome, FHIR_JSON, putAll, startTestServer, TestServer } from '../support/server';
import { adherenceOf, reviewOver } from '../support/review';
import { withAdminToken } from '../support/tokens';

const SCENARIOS = path.join(__dirname, '../fixtures/checks/scenarios');
const NAMES = ['late-refill', 'low-pdc', 'missed-follow-up', 'on-track', 'opioid-benzodiazepine'];

interface Expected {
  review: { date: string; periodStart: string; periodEnd: string };
  expected: {
    adherence: Record<string, string | number | boolean>[];
    findings: { code: string; resourceType: string; text: string }[];
  };
}

const resourcesOf = (name: string) =>
  JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.resources.json`), 'utf8')) as Resource[];
const expectedOf = (name: string) =>
  JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.expected.json`), 'utf8')) as Expected;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

/** Stores resources all-or-nothing, as an EHR sync would: one transaction Bundle of PUTs. */
const loadTransaction = (resources: Resource[]): Promise<void> => putAll(server.app, resources);
const review = (patientId: string, query: Record<string, string>) => reviewOver(server.app, patientId, query);

function findingsOf(out: Parameters): (DetectedIssue | Task)[] {
  return (out.parameter ?? []).filter((p) => p.name === 'finding').map((p) => p.resource as DetectedIssue | Task);
}

const summary = (f: DetectedIssue | Task) => ({
  code: f.code?.coding?.[0]?.code,
  resourceType: f.resourceType,
  text: f.resourceType === 'DetectedIssue' ? f.detail : f.description,
});

describe('Patient/[id]/$medication-review on the five scenario patients', () => {
  beforeAll(async () => {
    for (const name of NAMES) await loadTransaction(resourcesOf(name));
  });

  describe.each(NAMES)('%s', (name) => {
    const spec = expectedOf(name);

    it('GET answers the adherence and the findings the scenario expects', async () => {
      const out = await review(name, spec.review);
      expect(out.resourceType).toBe('Parameters');
      expect(adherenceOf(out)).toEqual(spec.expected.adherence);
      const findings = findingsOf(out);
      expect(findings.map(summary)).toEqual(spec.expected.findings);
      for (const f of findings) {
        const subject = f.resourceType === 'DetectedIssue' ? f.patient : f.for;
        expect(subject?.reference).toBe(`Patient/${name}`);
        // Evidence references resolve to stored resources of this patient.
        const refs =
          f.resourceType === 'DetectedIssue'
            ? (f.evidence ?? []).flatMap((e) => e.detail ?? [])
            : (f.input ?? []).flatMap((i) => (i.valueReference ? [i.valueReference] : []));
        expect(refs.length).toBeGreaterThan(0);
        for (const ref of refs) {
          const stored = await request(server.app).get(`/fhir/${ref.reference}`);
          expect(stored.status).toBe(200);
        }
      }
    });

    it('POST with a Parameters body gives the same answer', async () => {
      const get = await review(name, spec.review);
      const body: Parameters = {
        resourceType: 'Parameters',
        parameter: Object.entries(spec.review).map(([n, valueDate]) => ({ name: n, valueDate })),
      };
      const post = await request(server.app)
        .post(`/fhir/Patient/${name}/$medication-review`)
        .set('Content-Type', FHIR_JSON)
        .send(body);
      expect(post.status).toBe(200);
      expect(post.body).toEqual(get);
    });
  });

  it('defaults the period to the 180 days ending at the review date', async () => {
    const out = await review('late-refill', { date: '2026-06-30' });
    const statins = adherenceOf(out).find((a) => a.medicationClass === 'statins');
    // 2026-01-02 .. 2026-06-30 is 180 days; the treatment period starts at the first fill in it.
    expect(statins?.periodEnd).toBe('2026-06-30');
    expect(String(statins?.periodStart) >= '2026-01-02').toBe(true);
  });

  it('leaves deleted resources out: deleting the late fills changes the review', async () => {
    const before = findingsOf(await review('low-pdc', expectedOf('low-pdc').review)).map(summary);
    expect(before.map((f) => f.code)).toEqual(['pdc-below-threshold']);
    const stored = resourcesOf('low-pdc').filter((r) => r.resourceType === 'MedicationDispense');
    // Without its most recent fills the patient is also out of supply on the review date.
    for (const r of stored.slice(-2)) await request(server.app).delete(`/fhir/MedicationDispense/${r.id}`).expect(200);
    const after = findingsOf(await review('low-pdc', expectedOf('low-pdc').review))
      .map(summary)
      .map((f) => f.code);
    expect(after).toContain('late-refill');
    await loadTransaction(stored.slice(-2));
  });
});

describe('errors', () => {
  it('answers 404 with an OperationOutcome for an unknown patient', async () => {
    const response = await request(server.app).get('/fhir/Patient/nobody/$medication-review');
    expectOutcome(response, 404, { code: 'not-found' });
  });

  it('answers 410 for a deleted patient', async () => {
    await request(server.app)
      .put('/fhir/Patient/gone-patient')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Patient', id: 'gone-patient' })
      .expect(201);
    await request(server.app).delete('/fhir/Patient/gone-patient').expect(200);
    expectOutcome(await request(server.app).get('/fhir/Patient/gone-patient/$medication-review'), 410, {
      code: 'deleted',
    });
  });

  it.each([
    ['date', { date: '2026-02-30' }],
    ['date', { date: 'yesterday' }],
    ['periodStart', { periodStart: '2026-1-1' }],
    ['periodEnd', { periodStart: '2026-06-01', periodEnd: '2026-05-01' }],
    ['colour', { colour: 'red' }],
  ])('answers 400 naming %s for %j', async (expression, query) => {
    const response = await request(server.app).get('/fhir/Patient/on-track/$medication-review').query(query);
    expectOutcome(response, 400, { code: 'invalid', expression });
  });

  it('answers 400 naming the Parameters entry for an invalid date in a POST body', async () => {
    const response = await request(server.app)
      .post('/fhir/Patient/on-track/$medication-review')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Parameters', parameter: [{ name: 'date', valueDate: '2026-13-01' }] });
    expectOutcome(response, 400, { expression: "Parameters.parameter.where(name='date')" });
  });

  it('is not offered on other types', async () => {
    const response = await request(server.app).get('/fhir/Observation/x/$medication-review');
    expectOutcome(response, 404, { code: 'not-supported' });
  });
});

describe('CapabilityStatement', () => {
  it('lists $medication-review on Patient with its OperationDefinition', async () => {
    const statement = (await request(server.app).get('/fhir/metadata')).body as CapabilityStatement;
    const patient = statement.rest?.[0]?.resource?.find((r) => r.type === 'Patient');
    expect(patient?.operation).toContainEqual({ name: 'medication-review', definition: MEDICATION_REVIEW_DEFINITION });
    const observation = statement.rest?.[0]?.resource?.find((r) => r.type === 'Observation');
    expect(observation?.operation?.map((o) => o.name) ?? []).not.toContain('medication-review');
  });

  it('ships the OperationDefinition it names, valid for this server', async () => {
    const file = path.join(__dirname, '../../checks/OperationDefinition-medication-review.json');
    const definition = JSON.parse(fs.readFileSync(file, 'utf8')) as Resource & { url: string };
    expect(definition.url).toBe(MEDICATION_REVIEW_DEFINITION);
    await request(server.app)
      .put(`/fhir/OperationDefinition/${definition.id}`)
      .set('Content-Type', FHIR_JSON)
      .send(definition)
      .expect(201);
  });
});

const CHECKS_SYSTEM = 'https://meds-fhir.org/fhir/CodeSystem/medication-checks';
const PHQ9_CHECK: PlanDefinition = {
  resourceType: 'PlanDefinition',
  url: 'https://meds-fhir.test/PlanDefinition/check-antidepressant-no-phq9',
  name: 'AntidepressantNoPhq9',
  title: 'PHQ-9 due',
  status: 'active',
  action: [
    {
      title: 'PHQ-9 due',
      code: [{ coding: [{ system: CHECKS_SYSTEM, code: 'antidepressant-no-phq9', display: 'PHQ-9 due' }] }],
      extension: [
        {
          url: 'https://meds-fhir.org/fhir/StructureDefinition/check-parameter',
          extension: [
            { url: 'name', valueString: 'lookbackDays' },
            { url: 'value', valueInteger: 90 },
          ],
        },
      ],
      condition: [
        {
          kind: 'applicability',
          expression: {
            language: 'text/fhirpath',
            expression:
              "isActive('antidepressants') and %resources.ofType(Observation).where(code.coding.where(system = 'http://loinc.org' and code = '44261-6').exists() and status != 'entered-in-error' and clinicalDate().withinDays(%lookbackDays)).empty()",
          },
        },
      ],
      output: [{ type: 'Task' }],
      dynamicValue: [
        {
          path: 'detail',
          expression: {
            language: 'text/fhirpath',
            expression: "'On an antidepressant with no PHQ-9 in the last ' & %lookbackDays.toString() & ' days.'",
          },
        },
        {
          path: 'evidence',
          expression: { language: 'text/fhirpath', expression: "activeEvidence('antidepressants')" },
        },
      ],
    },
  ],
};

const MISSED = expectedOf('missed-follow-up').review;
const codesOf = async (patientId: string, query: Record<string, string>) =>
  findingsOf(await review(patientId, query)).map((f) => f.code?.coding?.[0]?.code);

describe('checks and classes added at runtime', () => {
  let checkId: string;

  it('a check PlanDefinition created through the API fires at once', async () => {
    expect(await codesOf('missed-follow-up', MISSED)).not.toContain('antidepressant-no-phq9');
    const created = await request(server.app)
      .post('/fhir/PlanDefinition')
      .set('Content-Type', FHIR_JSON)
      .send(PHQ9_CHECK);
    expect(created.status).toBe(201);
    checkId = created.body.id as string;
    const out = await review('missed-follow-up', MISSED);
    const finding = findingsOf(out).find((f) => f.code?.coding?.[0]?.code === 'antidepressant-no-phq9') as Task;
    expect(finding.resourceType).toBe('Task');
    expect(finding.description).toBe('On an antidepressant with no PHQ-9 in the last 90 days.');
    expect(finding.input?.map((i) => i.valueReference?.reference)).toContain('MedicationRequest/missed-follow-up-rx');
    // A patient who is not on an antidepressant is not flagged.
    expect(await codesOf('on-track', MISSED)).not.toContain('antidepressant-no-phq9');
  });

  it('stops firing once a PHQ-9 is recorded', async () => {
    const phq9: Observation = {
      resourceType: 'Observation',
      id: 'missed-follow-up-phq9',
      status: 'final',
      category: [
        {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'survey' }],
        },
      ],
      code: { coding: [{ system: 'http://loinc.org', code: '44261-6', display: 'PHQ-9 total score' }] },
      subject: { reference: 'Patient/missed-follow-up' },
      effectiveDateTime: '2026-06-15',
      valueInteger: 7,
    };
    await request(server.app).put(`/fhir/Observation/${phq9.id}`).set('Content-Type', FHIR_JSON).send(phq9).expect(201);
    expect(await codesOf('missed-follow-up', MISSED)).not.toContain('antidepressant-no-phq9');
    // ... and the PHQ-9 ages out of the 90-day window.
    expect(await codesOf('missed-follow-up', { ...MISSED, date: '2026-09-20' })).toContain('antidepressant-no-phq9');
  });

  it('is used after a restart (stored definitions are loaded at start-up)', async () => {
    const config = { ...server.running.context.config };
    const running = await createServerContext(config, process.env.MONGODB_URI as string, pino({ level: 'silent' }));
    try {
      const response = await request(withAdminToken(createApp(running.context)))
        .get('/fhir/Patient/missed-follow-up/$medication-review')
        .query({ ...MISSED, date: '2026-09-20' });
      expect(findingsOf(response.body as Parameters).map((f) => f.code?.coding?.[0]?.code)).toContain(
        'antidepressant-no-phq9',
      );
    } finally {
      await running.close();
    }
  });

  it('stops when the PlanDefinition is retired, and a deletion removes it', async () => {
    await request(server.app)
      .put(`/fhir/PlanDefinition/${checkId}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...PHQ9_CHECK, id: checkId, status: 'retired' })
      .expect(200);
    const later = { ...MISSED, date: '2026-09-20' };
    expect(await codesOf('missed-follow-up', later)).not.toContain('antidepressant-no-phq9');
    await request(server.app)
      .put(`/fhir/PlanDefinition/${checkId}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...PHQ9_CHECK, id: checkId })
      .expect(200);
    expect(await codesOf('missed-follow-up', later)).toContain('antidepressant-no-phq9');
    await request(server.app).delete(`/fhir/PlanDefinition/${checkId}`).expect(200);
    expect(await codesOf('missed-follow-up', later)).not.toContain('antidepressant-no-phq9');
  });

  it('rejects a malformed check definition with 422 and stores nothing', async () => {
    const action = PHQ9_CHECK.action![0];
    const cases: [PlanDefinition, string][] = [
      [
        {
          ...PHQ9_CHECK,
          action: [
            {
              ...action,
              condition: [{ kind: 'applicability', expression: { language: 'text/cql', expression: 'true' } }],
            },
          ],
        },
        'PlanDefinition.action[0]',
      ],
      [{ ...PHQ9_CHECK, action: [{ ...action, output: [{ type: 'Observation' }] }] }, 'PlanDefinition.action[0]'],
      [
        {
          ...PHQ9_CHECK,
          action: [
            action,
            {
              ...action,
              code: [{ coding: [{ system: CHECKS_SYSTEM, code: 'unknown-class' }] }],
              condition: [
                {
                  kind: 'applicability',
                  expression: { language: 'text/fhirpath', expression: "isActive('no-such-class')" },
                },
              ],
            },
          ],
        },
        'PlanDefinition.action[1]',
      ],
    ];
    const before = await server.running.connection.db.collection('PlanDefinition').countDocuments({});
    for (const [bad, expression] of cases) {
      const response = await request(server.app).post('/fhir/PlanDefinition').set('Content-Type', FHIR_JSON).send(bad);
      expectOutcome(response, 422, { code: 'business-rule', expression });
    }
    expect(await server.running.connection.db.collection('PlanDefinition').countDocuments({})).toBe(before);
  });

  it('stores PlanDefinitions that are not check definitions untouched', async () => {
    await request(server.app)
      .post('/fhir/PlanDefinition')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'PlanDefinition', status: 'draft', title: 'Clinic protocol', action: [{ title: 'Call' }] })
      .expect(201);
  });

  it('uses a medication class ValueSet created through the API', async () => {
    const antipsychotics: ValueSet = {
      resourceType: 'ValueSet',
      id: 'antipsychotics',
      url: 'https://meds-fhir.test/ValueSet/antipsychotics',
      name: 'Antipsychotics',
      title: 'Antipsychotics',
      status: 'active',
      extension: [
        {
          url: MEDICATION_CLASS_EXTENSION,
          extension: [
            { url: 'key', valueCode: 'antipsychotics' },
            { url: 'adherence', valueBoolean: true },
          ],
        },
      ],
      compose: {
        include: [{ system: 'http://www.whocc.no/atc', filter: [{ property: 'concept', op: 'is-a', value: 'N05A' }] }],
      },
    };
    const patient = { resourceType: 'Patient', id: 'ap-patient' } as const;
    const aripiprazole = {
      coding: [{ system: 'http://www.whocc.no/atc', code: 'N05AX12', display: 'aripiprazole' }],
      text: 'aripiprazole 10 MG Oral Tablet',
    };
    const fill = (n: number, day: string): Resource => ({
      resourceType: 'MedicationDispense',
      id: `ap-fill-${n}`,
      status: 'completed',
      subject: { reference: 'Patient/ap-patient' },
      medicationCodeableConcept: aripiprazole,
      whenHandedOver: day,
      daysSupply: { value: 30, unit: 'day', system: 'http://unitsofmeasure.org', code: 'd' },
    });
    await loadTransaction([patient, fill(1, '2026-03-01'), fill(2, '2026-04-15'), fill(3, '2026-06-20')]);
    expect(adherenceOf(await review('ap-patient', MISSED))).toEqual([]);

    await request(server.app)
      .put('/fhir/ValueSet/antipsychotics')
      .set('Content-Type', FHIR_JSON)
      .send(antipsychotics)
      .expect(201);
    const out = await review('ap-patient', MISSED);
    // 2026-03-01 .. 2026-06-30: 122 days, covered 30 + 30 + 11.
    expect(adherenceOf(out)).toEqual([
      {
        medicationClass: 'antipsychotics',
        periodStart: '2026-03-01',
        periodEnd: '2026-06-30',
        daysInPeriod: 122,
        daysCovered: 71,
        pdc: 0.582,
        adherent: false,
        lastCoveredDay: '2026-07-19',
        eligible: true,
      },
    ]);
    expect(findingsOf(out).map((f) => f.code?.coding?.[0]?.code)).toEqual(['pdc-below-threshold']);
  });

  it('rejects a class ValueSet whose key belongs to another class, or that includes an unknown value set', async () => {
    const base: ValueSet = {
      resourceType: 'ValueSet',
      url: 'https://meds-fhir.test/ValueSet/other-statins',
      status: 'active',
      extension: [{ url: MEDICATION_CLASS_EXTENSION, extension: [{ url: 'key', valueCode: 'statins' }] }],
      compose: {
        include: [{ system: 'http://www.whocc.no/atc', filter: [{ property: 'concept', op: 'is-a', value: 'C10AA' }] }],
      },
    };
    expectOutcome(await request(server.app).post('/fhir/ValueSet').set('Content-Type', FHIR_JSON).send(base), 422, {
      code: 'business-rule',
      expression: `ValueSet.extension('${MEDICATION_CLASS_EXTENSION}')`,
    });
    const unknownInclude: ValueSet = {
      ...base,
      extension: [{ url: MEDICATION_CLASS_EXTENSION }],
      id: undefined,
      name: 'OtherStatins',
      compose: { include: [{ valueSet: ['https://nowhere.test/ValueSet/x'] }] },
    };
    expectOutcome(
      await request(server.app).post('/fhir/ValueSet').set('Content-Type', FHIR_JSON).send(unknownInclude),
      422,
      { expression: 'ValueSet.compose.include[0].valueSet[0]' },
    );
  });
});

describe('the scenario examples in examples/scenarios', () => {
  let examples: TestServer;
  beforeAll(async () => {
    examples = await startTestServer(`${__filename}-examples`);
  });
  afterAll(async () => examples.close());

  it('load through the examples loader (validated like any write) and review as their README says', async () => {
    const loaded = await loadExamplesIfEmpty(examples.running.context);
    expect(loaded).toBe(exampleResources().length);
    for (const name of NAMES) {
      const spec = expectedOf(name);
      const response = await request(examples.app).get(`/fhir/Patient/${name}/$medication-review`).query(spec.review);
      expect(response.status).toBe(200);
      expect(adherenceOf(response.body as Parameters)).toEqual(spec.expected.adherence);
      expect(findingsOf(response.body as Parameters).map(summary)).toEqual(spec.expected.findings);
    }
  });

  it('declare our profiles wherever the data satisfy them', () => {
    const declared = exampleResources(path.join(__dirname, '../../examples/scenarios')).filter(
      (r) => r.meta?.profile?.length,
    );
    expect(declared.length).toBeGreaterThan(60);
  });
});
