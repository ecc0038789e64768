import type {
  MedicationDispense,
  MedicationRequest,
  OperationOutcome,
  OperationOutcomeIssue,
  StructureDefinition,
} from '@medplum/fhirtypes';
import request from 'supertest';
import { exampleResources } from '../../src/examples';
import { publishShipped } from '../../src/modules/publish';
import { createValidator } from '../../src/validation';
import { expectOutcome, FHIR_JSON, startTestServer, TestServer } from '../support/server';

const DISPENSE_PROFILE = 'http://meds-fhir.example.org/fhir/StructureDefinition/meds-dispense';
let server: TestServer;
let strict: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
  strict = await startTestServer(`${__filename}-strict`, {
    requiredProfiles: { MedicationDispense: [DISPENSE_PROFILE] },
  });
});
afterAll(async () => {
  await server.close();
  await strict.close();
});

const prescription = exampleResources().find((r) => r.resourceType === 'MedicationRequest') as MedicationRequest;
const dispense = exampleResources().find((r) => r.resourceType === 'MedicationDispense') as MedicationDispense;

const errors = (body: OperationOutcome): OperationOutcomeIssue[] =>
  (body.issue ?? []).filter((i) => i.severity === 'error');
const count = (s: TestServer, type: string) => s.running.connection.db.collection(type).countDocuments({});

describe('validation of every write', () => {
  it('rejects an invalid resource with 422 listing every issue with its expression, and stores nothing', async () => {
    const before = await count(server, 'MedicationRequest');
    const bad = {
      ...prescription,
      id: undefined,
      status: 'bogus',
      authoredOn: '2026-13-45',
      intent: undefined,
      subject: undefined,
      colour: 'red',
    };
    const response = await request(server.app).post('/fhir/MedicationRequest').set('Content-Type', FHIR_JSON).send(bad);
    expectOutcome(response, 422);
    const expressions = errors(response.body).map((i) => i.expression?.[0]);
    expect(expressions).toEqual(
      expect.arrayContaining([
        'MedicationRequest.status',
        'MedicationRequest.authoredOn',
        'MedicationRequest.intent',
        'MedicationRequest.subject',
        'MedicationRequest.colour',
      ]),
    );
    expect(await count(server, 'MedicationRequest')).toBe(before);
  });

  it('rejects an invalid update and keeps the stored version', async () => {
    await request(server.app)
      .put(`/fhir/MedicationRequest/${prescription.id}`)
      .set('Content-Type', FHIR_JSON)
      .send(prescription)
      .expect(201);
    const response = await request(server.app)
      .put(`/fhir/MedicationRequest/${prescription.id}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...prescription, dosageInstruction: [{ timing: { repeat: { frequency: 'daily' } } }] });
    expectOutcome(response, 422, { expression: 'MedicationRequest.dosageInstruction[0].timing.repeat.frequency' });
    const current = await request(server.app).get(`/fhir/MedicationRequest/${prescription.id}`);
    expect(current.body.meta.versionId).toBe('1');
  });

  it('validates against a declared meta.profile, and an unknown profile is an error', async () => {
    const { daysSupply: _omitted, ...withoutDaysSupply } = dispense;
    const response = await request(server.app)
      .put(`/fhir/MedicationDispense/${dispense.id}`)
      .set('Content-Type', FHIR_JSON)
      .send(withoutDaysSupply);
    expectOutcome(response, 422, { expression: 'MedicationDispense.daysSupply' });
    const unknown = await request(server.app)
      .post('/fhir/MedicationDispense')
      .set('Content-Type', FHIR_JSON)
      .send({ ...dispense, id: undefined, meta: { profile: ['http://example.org/StructureDefinition/unknown'] } });
    expectOutcome(unknown, 422);
    expect(JSON.stringify(unknown.body)).toContain('http://example.org/StructureDefinition/unknown');
  });

  it('accepts every example resource (each declares our profile)', async () => {
    for (const resource of exampleResources()) {
      const response = await request(server.app)
        .put(`/fhir/${resource.resourceType}/${resource.id}`)
        .set('Content-Type', FHIR_JSON)
        .send(resource);
      expect([200, 201]).toContain(response.status);
    }
  });

  it('requires a configured profile for a type even when the resource does not declare it', async () => {
    const { meta: _meta, performer: _performer, ...undeclared } = dispense;
    const response = await request(strict.app)
      .post('/fhir/MedicationDispense')
      .set('Content-Type', FHIR_JSON)
      .send(undeclared);
    expectOutcome(response, 422, { expression: 'MedicationDispense.performer' });
    const { meta: _m, ...conforming } = dispense;
    expect(
      (await request(strict.app).post('/fhir/MedicationDispense').set('Content-Type', FHIR_JSON).send(conforming))
        .status,
    ).toBe(201);
  });

  it('uses a StructureDefinition created at runtime without a restart, and refuses one it cannot use', async () => {
    const profile: StructureDefinition = {
      resourceType: 'StructureDefinition',
      url: 'http://clinic.example.org/StructureDefinition/patient-with-birthdate',
      name: 'PatientWithBirthDate',
      status: 'active',
      kind: 'resource',
      abstract: false,
      type: 'Patient',
      baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
      derivation: 'constraint',
      differential: {
        element: [
          { id: 'Patient', path: 'Patient' },
          { id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1 },
        ],
      },
    };
    await request(server.app)
      .post('/fhir/StructureDefinition')
      .set('Content-Type', FHIR_JSON)
      .send(profile)
      .expect(201);
    const patient = { resourceType: 'Patient', meta: { profile: [profile.url] }, name: [{ family: 'Profiled' }] };
    const rejected = await request(server.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(patient);
    expectOutcome(rejected, 422, { expression: 'Patient.birthDate' });
    const accepted = await request(server.app)
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send({ ...patient, birthDate: '1990-01-01' });
    expect(accepted.status).toBe(201);

    const unusable = {
      ...profile,
      url: 'http://clinic.example.org/StructureDefinition/bad',
      derivation: 'specialization',
    };
    expectOutcome(
      await request(server.app).post('/fhir/StructureDefinition').set('Content-Type', FHIR_JSON).send(unusable),
      422,
    );
  });
});

describe('$validate', () => {
  it('answers 200 with an OperationOutcome for valid and invalid resources alike, storing nothing', async () => {
    const before = await count(server, 'MedicationRequest');
    const valid = await request(server.app)
      .post('/fhir/MedicationRequest/$validate')
      .set('Content-Type', FHIR_JSON)
      .send(prescription);
    expect(valid.status).toBe(200);
    expect(errors(valid.body)).toEqual([]);
    const invalid = await request(server.app)
      .post('/fhir/MedicationRequest/$validate')
      .set('Content-Type', FHIR_JSON)
      .send({ ...prescription, status: 'bogus' });
    expect(invalid.status).toBe(200);
    expect(errors(invalid.body).map((i) => i.expression?.[0])).toContain('MedicationRequest.status');
    expect(await count(server, 'MedicationRequest')).toBe(before);
  });

  it('takes a Parameters with resource, profile and mode, and validates stored instances', async () => {
    const { meta: _meta, daysSupply: _d, ...plain } = dispense;
    const parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource: plain },
        { name: 'profile', valueUri: DISPENSE_PROFILE },
        { name: 'mode', valueCode: 'create' },
      ],
    };
    const response = await request(server.app)
      .post('/fhir/MedicationDispense/$validate')
      .set('Content-Type', FHIR_JSON)
      .send(parameters);
    expect(response.status).toBe(200);
    expect(errors(response.body).map((i) => i.expression?.[0])).toContain('MedicationDispense.daysSupply');

    await request(server.app)
      .put(`/fhir/MedicationRequest/${prescription.id}`)
      .set('Content-Type', FHIR_JSON)
      .send(prescription);
    const instance = await request(server.app).get(`/fhir/MedicationRequest/${prescription.id}/$validate`);
    expect(instance.status).toBe(200);
    expect(errors(instance.body)).toEqual([]);
    const mismatch = await request(server.app)
      .post(`/fhir/MedicationRequest/${prescription.id}/$validate?mode=update`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...prescription, id: 'other' });
    expect(errors(mismatch.body).map((i) => i.expression?.[0])).toContain('MedicationRequest.id');
    const badMode = await request(server.app)
      .post('/fhir/MedicationRequest/$validate?mode=sideways')
      .set('Content-Type', FHIR_JSON)
      .send(prescription);
    expectOutcome(badMode, 400);
    expectOutcome(await request(server.app).get('/fhir/MedicationRequest/unknown-id/$validate'), 404);
  });
});

describe('shipped profiles', () => {
  it('are served as StructureDefinition resources, searchable by url, and a restart adds no version', async () => {
    const found = await request(server.app).get(`/fhir/StructureDefinition?url=${DISPENSE_PROFILE}`);
    expect(found.status).toBe(200);
    expect(found.body.total).toBe(1);
    expect(found.body.entry[0].resource.id).toBe('meds-dispense');
    // What every start does: publishing unchanged files again writes nothing.
    expect(await publishShipped(server.running.context, createValidator().shipped)).toBe(0);
    const history = await request(server.app).get('/fhir/StructureDefinition/meds-dispense/_history');
    expect(history.body.entry).toHaveLength(1);
  });
});

describe('DetectedIssue.status as R4 binds it', () => {
  const issue = (status: string) => ({
    resourceType: 'DetectedIssue',
    id: 'r4-status',
    status,
    patient: { reference: 'Patient/r4-status-patient' },
    detail: 'Statins: supply ran out',
  });

  it('stores a cancelled DetectedIssue (ObservationStatus) and refuses R5 mitigated with 422, storing nothing', async () => {
    const refused = await request(server.app)
      .put('/fhir/DetectedIssue/r4-status')
      .set('Content-Type', FHIR_JSON)
      .send(issue('mitigated'));
    expectOutcome(refused, 422);
    expect(errors(refused.body).map((i) => [i.code, i.expression?.[0]])).toEqual([
      ['code-invalid', 'DetectedIssue.status'],
    ]);
    expect((await request(server.app).get('/fhir/DetectedIssue/r4-status')).status).toBe(404);

    const stored = await request(server.app)
      .put('/fhir/DetectedIssue/r4-status')
      .set('Content-Type', FHIR_JSON)
      .send(issue('cancelled'));
    expect(stored.status).toBe(201);
    expect(stored.body.status).toBe('cancelled');
  });
});
