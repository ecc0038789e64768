import * as fs from 'node:fs';
import * as path from 'node:path';
import type {
  Bundle,
  OperationOutcome,
  Parameters,
  PlanDefinition,
  Resource,
  StructureDefinition,
  ValueSet,
} from '@medplum/fhirtypes';
import request from 'supertest';
import { FHIR_JSON, putAll } from '../support/server';
import { startCluster, within, type ClusterMember } from './cluster';

// Two server processes (contexts) on one database: what one stores, the other uses within 5 s.
let a: ClusterMember;
let b: ClusterMember;
let close: () => Promise<void>;
beforeAll(async () => {
  const cluster = await startCluster(__filename);
  [a, b] = cluster.members;
  close = cluster.close;
});
afterAll(async () => close());

const post = (member: ClusterMember, resource: Resource) =>
  request(member.app).post(`/fhir/${resource.resourceType}`).set('Content-Type', FHIR_JSON).send(resource);

describe('runtime profiles', () => {
  const profile: StructureDefinition = {
    resourceType: 'StructureDefinition',
    url: 'http://clinic.example.org/StructureDefinition/patient-with-gender',
    name: 'PatientWithGender',
    status: 'active',
    kind: 'resource',
    abstract: false,
    type: 'Patient',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
    derivation: 'constraint',
    differential: {
      element: [
        { id: 'Patient', path: 'Patient' },
        { id: 'Patient.gender', path: 'Patient.gender', min: 1 },
      ],
    },
  };
  const patient = { resourceType: 'Patient', meta: { profile: [profile.url] }, name: [{ family: 'Profiled' }] };
  let profileId: string;

  it('a StructureDefinition created on A is enforced by validation on B within 5 s', async () => {
    // Unknown on B at first: a resource declaring it is refused as naming an unknown profile.
    const before = await post(b, { ...patient, gender: 'female' } as Resource);
    expect(before.status).toBe(422);
    expect(JSON.stringify(before.body)).toContain('not known to this server');

    const created = await post(a, profile);
    expect(created.status).toBe(201);
    profileId = created.body.id as string;
    const waited = await within(
      5000,
      async () => (await post(b, { ...patient, gender: 'female' } as Resource)).status === 201,
    );
    expect(waited).toBeLessThan(5000);
    const refused = await post(b, patient as Resource);
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.body)).toContain('Patient.gender');
    // B also lists it in its CapabilityStatement.
    const metadata = await request(b.app).get('/fhir/metadata');
    expect(JSON.stringify(metadata.body)).toContain(profile.url);
  });

  it('a deletion on A unregisters the profile on B', async () => {
    await request(a.app).delete(`/fhir/StructureDefinition/${profileId}`).expect(200);
    await within(5000, async () => {
      const response = await post(b, { ...patient, gender: 'female' } as Resource);
      return response.status === 422 && JSON.stringify(response.body).includes('not known to this server');
    });
  });
});

describe('runtime value sets', () => {
  const VALUE_SET = path.join(__dirname, '../../profiles/ValueSet-medication-statement-report-status.json');
  const shipped = JSON.parse(fs.readFileSync(VALUE_SET, 'utf8')) as ValueSet;
  const PROFILE = 'http://meds-fhir.example.org/fhir/StructureDefinition/meds-medication-statement';
  const statement = {
    resourceType: 'MedicationStatement',
    status: 'on-hold',
    medicationCodeableConcept: { text: 'buprenorphine' },
    subject: { reference: 'Patient/p1' },
  };
  /** The issues $validate on `member` reports about the status, which the value set binds (required). */
  const statusIssues = async (member: ClusterMember, status = 'on-hold') => {
    const response = await request(member.app)
      .post(`/fhir/MedicationStatement/$validate?profile=${encodeURIComponent(PROFILE)}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...statement, status });
    expect(response.status).toBe(200);
    return ((response.body as OperationOutcome).issue ?? []).filter((i) =>
      i.expression?.some((e) => e.startsWith('MedicationStatement.status')),
    );
  };

  it('a narrower version of a shipped ValueSet stored on A binds on B, and its deletion brings the shipped one back', async () => {
    expect(await statusIssues(b)).toEqual([]);
    // A status of R4 that the shipped subset leaves out: refused while that value set is in force.
    expect((await statusIssues(b, 'intended')).length).toBeGreaterThan(0);
    const include = shipped.compose?.include?.[0];
    const narrower: ValueSet = {
      ...shipped,
      compose: { include: [{ ...include, concept: include?.concept?.filter((c) => c.code !== 'on-hold') }] },
    };
    await request(a.app).put(`/fhir/ValueSet/${shipped.id}`).set('Content-Type', FHIR_JSON).send(narrower).expect(200);
    await within(5000, async () => (await statusIssues(b)).length > 0);
    await request(a.app).delete(`/fhir/ValueSet/${shipped.id}`).expect(200);
    await within(5000, async () => (await statusIssues(b)).length === 0);
    // The shipped value set answers for the url again (rather than none, which would check nothing).
    expect((await statusIssues(b, 'intended')).length).toBeGreaterThan(0);
    // On A too, which applied both versions through its own commits.
    expect(await statusIssues(a)).toEqual([]);
    expect((await statusIssues(a, 'intended')).length).toBeGreaterThan(0);
  });
});

const SCENARIOS = path.join(__dirname, '../fixtures/checks/scenarios');
const CHECKS_SYSTEM = 'https://meds-fhir.org/fhir/CodeSystem/medication-checks';
/** A check that flags every patient on an antidepressant (test data, not a clinical rule). */
const ANTIDEPRESSANT_CHECK: PlanDefinition = {
  resourceType: 'PlanDefinition',
  url: 'https://meds-fhir.test/PlanDefinition/check-on-antidepressant',
  name: 'OnAntidepressant',
  title: 'On an antidepressant',
  status: 'active',
  action: [
    {
      title: 'On an antidepressant',
      code: [{ coding: [{ system: CHECKS_SYSTEM, code: 'on-antidepressant', display: 'On an antidepressant' }] }],
      condition: [
        { kind: 'applicability', expression: { language: 'text/fhirpath', expression: "isActive('antidepressants')" } },
      ],
      output: [{ type: 'Task' }],
      dynamicValue: [
        { path: 'detail', expression: { language: 'text/fhirpath', expression: "'Antidepressant on record.'" } },
      ],
    },
  ],
};

describe('runtime checks', () => {
  const name = 'missed-follow-up';
  const spec = JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.expected.json`), 'utf8')) as {
    review: Record<string, string>;
  };
  const codesOn = async (member: ClusterMember): Promise<(string | undefined)[]> => {
    const response = await request(member.app).get(`/fhir/Patient/${name}/$medication-review`).query(spec.review);
    expect(response.status).toBe(200);
    return ((response.body as Parameters).parameter ?? [])
      .filter((p) => p.name === 'finding')
      .map((p) => (p.resource as { code?: { coding?: { code?: string }[] } }).code?.coding?.[0]?.code);
  };

  it("a check PlanDefinition stored on A fires in B's $medication-review, and stops once deleted", async () => {
    const resources = JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.resources.json`), 'utf8')) as Resource[];
    await putAll(a.app, resources);
    expect(await codesOn(b)).not.toContain('on-antidepressant');

    const created = await post(a, ANTIDEPRESSANT_CHECK);
    expect(created.status).toBe(201);
    expect(await codesOn(a)).toContain('on-antidepressant');
    await within(5000, async () => (await codesOn(b)).includes('on-antidepressant'));

    await request(a.app).delete(`/fhir/PlanDefinition/${created.body.id}`).expect(200);
    await within(5000, async () => !(await codesOn(b)).includes('on-antidepressant'));
  });
});

describe('paging', () => {
  it('a next link made by A is followed by B', async () => {
    for (let i = 0; i < 5; i++) {
      expect((await post(a, { resourceType: 'Patient', name: [{ family: `Paged${i}` }] } as Resource)).status).toBe(
        201,
      );
    }
    const first = await request(a.app).get('/fhir/Patient?family=Paged&_count=2&_sort=family');
    expect(first.status).toBe(200);
    const next = (first.body as Bundle).link?.find((l) => l.relation === 'next')?.url;
    expect(next).toBeDefined();
    const second = await request(b.app).get((next as string).replace('http://meds-fhir.test', ''));
    expect(second.status).toBe(200);
    const families = (bundle: Bundle) =>
      (bundle.entry ?? []).map((e) => (e.resource as { name?: { family?: string }[] }).name?.[0]?.family);
    expect(families(first.body as Bundle)).toEqual(['Paged0', 'Paged1']);
    expect(families(second.body as Bundle)).toEqual(['Paged2', 'Paged3']);
  });

  it('a history next link made by A is followed by B', async () => {
    const first = await request(a.app).get('/fhir/Patient/_history?_count=2');
    expect(first.status).toBe(200);
    const next = (first.body as Bundle).link?.find((l) => l.relation === 'next')?.url;
    expect(next).toBeDefined();
    const second = await request(b.app).get((next as string).replace('http://meds-fhir.test', ''));
    expect(second.status).toBe(200);
    const ids = (bundle: Bundle) => (bundle.entry ?? []).map((e) => e.fullUrl);
    expect(ids(second.body as Bundle)).toHaveLength(2);
    expect(ids(second.body as Bundle)).not.toEqual(expect.arrayContaining(ids(first.body as Bundle)));
  });
});
