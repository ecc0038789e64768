import type { CapabilityStatement, OperationDefinition, OperationOutcome, Parameters } from '@medplum/fhirtypes';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { loadWorld } from '../auth/fixtures';
import { auditsOf } from '../audit/support';
import { expectOutcome, FHIR_JSON, startTestServer, TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';
import { download, exported, idsOf, kickOff, manifestOf, pathOf } from './export-support';

/** Bulk Data $export (issue 13): kick-off, status, manifest, files and access control over HTTP. */
let server: TestServer;
const bearer = async (claims: Record<string, unknown>) => `Bearer ${await tokenFor(claims)}`;

beforeAll(async () => {
  server = await startTestServer(__filename, { exportPollSeconds: 1, exportFileMaxResources: 3 });
  await loadWorld(server.app);
  // Five prescriptions of P1's in all: with the world's two, three more (split into 3 + 2 per file).
  for (const n of [1, 2, 3]) {
    await request(server.app)
      .put(`/fhir/MedicationRequest/exp-mr-${n}`)
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'MedicationRequest',
        id: `exp-mr-${n}`,
        status: n === 3 ? 'stopped' : 'active',
        intent: 'order',
        medicationReference: { reference: 'Medication/acc-med' },
        subject: { reference: 'Patient/acc-p1' },
        note: [{ text: 'exported' }],
      })
      .expect(201);
  }
}, 120_000);

afterAll(async () => {
  await server?.close();
});

const WORLD_PRESCRIPTIONS = ['acc-mr-p1', 'acc-mr-p1-part2', 'acc-mr-p2', 'acc-mr-p2-part2'];
const ALL_PRESCRIPTIONS = [...WORLD_PRESCRIPTIONS, 'exp-mr-1', 'exp-mr-2', 'exp-mr-3'].sort();

describe('kick-off', () => {
  it('needs Prefer: respond-async', async () => {
    const response = await request(server.app).get('/fhir/$export');
    expectOutcome(response, 400);
  });

  it.each([
    ['_outputFormat=text/csv', '_outputFormat'],
    ['_type=Nonsense', '_type'],
    ['_since=yesterday', '_since'],
    ['_typeFilter=MedicationRequest%3Fnonsense-parameter%3D1', '_typeFilter'],
    ['_typeFilter=status%3Dactive', '_typeFilter'],
    ['_typeFilter=Observation%3Fstatus%3Dfinal&_type=MedicationRequest', '_typeFilter'],
    ['_elements=a.b.c', '_elements'],
    ['includeAssociatedData=Everything', 'includeAssociatedData'],
    ['unknownParameter=1', 'unknownParameter'],
    ['patient=Patient/acc-p1', 'patient'],
  ])('refuses %s with 400 naming the parameter, and stores no job', async (query, expression) => {
    const before = await server.running.connection.db.collection('_export_jobs').countDocuments();
    const response = await request(server.app).get(`/fhir/$export?${query}`).set('Prefer', 'respond-async');
    expectOutcome(response, 400, { expression });
    expect(await server.running.connection.db.collection('_export_jobs').countDocuments()).toBe(before);
  });

  it('refuses types outside the Patient compartment in a Patient-level export', async () => {
    const response = await request(server.app)
      .get('/fhir/Patient/$export?_type=Medication')
      .set('Prefer', 'respond-async');
    expectOutcome(response, 400, { expression: '_type' });
  });

  it('refuses a Group that does not exist with 404', async () => {
    const response = await request(server.app).get('/fhir/Group/no-such-group/$export').set('Prefer', 'respond-async');
    expectOutcome(response, 404);
  });

  it('answers 202 with an absolute Content-Location', async () => {
    const response = await request(server.app).get('/fhir/$export?_type=Patient').set('Prefer', 'respond-async');
    expect(response.status).toBe(202);
    expect(response.headers['content-location']).toMatch(
      /^http:\/\/meds-fhir\.test\/fhir\/\$export-poll-status\?_jobId=[0-9a-f-]{36}$/,
    );
    expect((response.body as OperationOutcome).resourceType).toBe('OperationOutcome');
  });
});

describe('system export', () => {
  it('completes with a manifest and NDJSON files split at EXPORT_FILE_MAX_RESOURCES', async () => {
    const before = Date.now();
    const status = await kickOff(server.app, '/fhir/$export?_outputFormat=application/fhir%2Bndjson');
    const manifest = await manifestOf(server.app, status);
    expect(Date.parse(manifest.transactionTime)).toBeGreaterThanOrEqual(before - 1000);
    expect(manifest.request).toBe('http://meds-fhir.test/fhir/$export?_outputFormat=application%2Ffhir%2Bndjson');
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.error).toEqual([]);
    const prescriptionFiles = manifest.output.filter((f) => f.type === 'MedicationRequest');
    expect(prescriptionFiles.map((f) => f.count)).toEqual([3, 3, 1]);
    const files = await exported(server.app, manifest);
    expect(idsOf(files.get('MedicationRequest'))).toEqual(ALL_PRESCRIPTIONS);
    expect(idsOf(files.get('Patient'))).toEqual(['acc-p1', 'acc-p2']);
    expect(idsOf(files.get('Medication'))).toEqual(['acc-med']);
    expect(idsOf(files.get('Consent'))).toEqual(['acc-consent-p1-d3']);
    // Stored as served: the version and time the server gave each.
    expect(files.get('Patient')?.[0].meta?.versionId).toBe('1');
  });

  it('exports only _type, matching _typeFilter, changed _since, with _elements', async () => {
    const since = new Date(Date.now() - 1).toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Changed after `since`: one prescription of P2 and one new stopped one.
    await request(server.app)
      .put('/fhir/MedicationRequest/acc-mr-p2')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'MedicationRequest',
        id: 'acc-mr-p2',
        status: 'active',
        intent: 'order',
        medicationReference: { reference: 'Medication/acc-med' },
        subject: { reference: 'Patient/acc-p2' },
        note: [{ text: 'changed' }],
      })
      .expect(200);
    await request(server.app)
      .put('/fhir/MedicationRequest/exp-mr-late')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'MedicationRequest',
        id: 'exp-mr-late',
        status: 'stopped',
        intent: 'order',
        medicationReference: { reference: 'Medication/acc-med' },
        subject: { reference: 'Patient/acc-p2' },
      })
      .expect(201);
    const all = await manifestOf(
      server.app,
      await kickOff(server.app, `/fhir/$export?_type=MedicationRequest,Patient&_since=${encodeURIComponent(since)}`),
    );
    const changed = await exported(server.app, all);
    expect(idsOf(changed.get('MedicationRequest'))).toEqual(['acc-mr-p2', 'exp-mr-late']);
    expect(changed.has('Patient')).toBe(false);
    expect(new Set(all.output.map((f) => f.type))).toEqual(new Set(['MedicationRequest']));

    const filtered = await manifestOf(
      server.app,
      await kickOff(
        server.app,
        `/fhir/$export?_type=MedicationRequest&_typeFilter=${encodeURIComponent('MedicationRequest?status=stopped')}` +
          '&_elements=MedicationRequest.status,id',
      ),
    );
    const stopped = (await exported(server.app, filtered)).get('MedicationRequest') ?? [];
    expect(idsOf(stopped)).toEqual(['exp-mr-3', 'exp-mr-late']);
    for (const resource of stopped) {
      expect(resource).not.toHaveProperty('note');
      expect(resource).toHaveProperty('status', 'stopped');
      // Mandatory elements are kept, and the subset is marked.
      expect(resource).toHaveProperty('intent', 'order');
      expect(resource.meta?.tag?.map((t) => t.code)).toContain('SUBSETTED');
    }
  });

  it('ignores includeAssociatedData with a warning in the error file', async () => {
    const manifest = await manifestOf(
      server.app,
      await kickOff(server.app, '/fhir/$export?_type=Patient&includeAssociatedData=LatestProvenanceResources'),
    );
    expect(manifest.error).toHaveLength(1);
    expect(manifest.error[0].type).toBe('OperationOutcome');
    const [warnings] = (await download(server.app, manifest.error[0].url)) as OperationOutcome[];
    expect(warnings.resourceType).toBe('OperationOutcome');
    expect(warnings.issue[0]).toMatchObject({ severity: 'warning' });
    expect(warnings.issue[0].details?.text).toMatch(/includeAssociatedData LatestProvenanceResources/);
  });

  it('takes a POST Parameters kick-off', async () => {
    const body: Parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: '_type', valueString: 'Medication' },
        { name: '_outputFormat', valueString: 'ndjson' },
      ],
    };
    const manifest = await manifestOf(server.app, await kickOff(server.app, '/fhir/$export', { body }));
    expect(manifest.output.map((f) => f.type)).toEqual(['Medication']);
  });
});

describe('Patient and Group level', () => {
  it('exports the Patient compartments only', async () => {
    const manifest = await manifestOf(server.app, await kickOff(server.app, '/fhir/Patient/$export'));
    const types = new Set(manifest.output.map((f) => f.type));
    expect(types.has('Medication')).toBe(false);
    expect(types.has('Practitioner')).toBe(false);
    expect(types.has('MedicationRequest')).toBe(true);
    const files = await exported(server.app, manifest);
    expect(idsOf(files.get('Patient'))).toEqual(['acc-p1', 'acc-p2']);
  });

  it('limits a POST Patient-level export to `patient`', async () => {
    const body: Parameters = {
      resourceType: 'Parameters',
      parameter: [
        { name: 'patient', valueReference: { reference: 'Patient/acc-p2' } },
        { name: '_type', valueString: 'Patient,MedicationDispense' },
      ],
    };
    const files = await exported(
      server.app,
      await manifestOf(server.app, await kickOff(server.app, '/fhir/Patient/$export', { body })),
    );
    expect(idsOf(files.get('Patient'))).toEqual(['acc-p2']);
    expect(idsOf(files.get('MedicationDispense'))).toEqual(['acc-mr-p2-fill', 'acc-mr-p2-part2-fill']);
  });

  it("exports one Patient's compartment at Patient/[id]/$export, and refuses an unknown one", async () => {
    const files = await exported(
      server.app,
      await manifestOf(
        server.app,
        await kickOff(server.app, '/fhir/Patient/acc-p2/$export?_type=Patient,MedicationDispense'),
      ),
    );
    expect(idsOf(files.get('Patient'))).toEqual(['acc-p2']);
    expect(idsOf(files.get('MedicationDispense'))).toEqual(['acc-mr-p2-fill', 'acc-mr-p2-part2-fill']);
    const unknown = await request(server.app)
      .get('/fhir/Patient/no-such-patient/$export')
      .set('Prefer', 'respond-async');
    expectOutcome(unknown, 404);
  });

  it("exports a Group's members", async () => {
    await request(server.app)
      .put('/fhir/Group/exp-group')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Group',
        id: 'exp-group',
        type: 'person',
        actual: true,
        member: [
          { entity: { reference: 'Patient/acc-p1' } },
          { entity: { reference: 'Patient/acc-p2' }, inactive: true },
        ],
      })
      .expect(201);
    const files = await exported(
      server.app,
      await manifestOf(
        server.app,
        await kickOff(server.app, '/fhir/Group/exp-group/$export?_type=Patient,MedicationRequest'),
      ),
    );
    expect(idsOf(files.get('Patient'))).toEqual(['acc-p1']);
    expect(idsOf(files.get('MedicationRequest'))).toEqual([
      'acc-mr-p1',
      'acc-mr-p1-part2',
      'exp-mr-1',
      'exp-mr-2',
      'exp-mr-3',
    ]);
  });
});

describe('access', () => {
  it('gives a requester without Part 2 clearance no Part 2 resources', async () => {
    const uncleared = await bearer({ sub: 'exp-uncleared', scope: 'system/*.rs' });
    const manifest = await manifestOf(
      server.app,
      await kickOff(server.app, '/fhir/$export?_type=MedicationRequest,MedicationDispense', {
        authorization: uncleared,
      }),
      uncleared,
    );
    const files = await exported(server.app, manifest, uncleared);
    const prescriptions = idsOf(files.get('MedicationRequest'));
    expect(prescriptions).toContain('acc-mr-p1');
    expect(prescriptions).not.toContain('acc-mr-p1-part2');
    expect(prescriptions).not.toContain('acc-mr-p2-part2');
    expect(idsOf(files.get('MedicationDispense'))).toEqual(['acc-mr-p1-fill', 'acc-mr-p2-fill']);
  });

  it("gives a patient's token that patient's compartment only, and warns of types it may not read", async () => {
    const patient = await bearer({
      sub: 'exp-patient',
      scope: 'patient/MedicationRequest.rs patient/Patient.rs',
      patient: 'acc-p2',
    });
    const manifest = await manifestOf(
      server.app,
      await kickOff(server.app, '/fhir/Patient/$export?_type=Patient,MedicationRequest,Observation', {
        authorization: patient,
      }),
      patient,
    );
    const files = await exported(server.app, manifest, patient);
    expect(idsOf(files.get('Patient'))).toEqual(['acc-p2']);
    const prescriptions = files.get('MedicationRequest') ?? [];
    // Their own Part 2 records included: a patient is never hidden from themselves.
    expect(idsOf(prescriptions)).toEqual(expect.arrayContaining(['acc-mr-p2', 'acc-mr-p2-part2']));
    for (const r of prescriptions) expect(r).toHaveProperty('subject.reference', 'Patient/acc-p2');
    const [warnings] = (await download(server.app, manifest.error[0].url, patient)) as OperationOutcome[];
    expect(warnings.issue.map((i) => i.details?.text).join(' ')).toMatch(/Observation/);
  });

  it('lets no other requester poll or download', async () => {
    const owner = await bearer({ sub: 'exp-owner', scope: 'system/*.rs', clearance: ['*'] });
    const other = await bearer({ sub: 'exp-other', scope: 'system/*.rs', clearance: ['*'] });
    const status = await kickOff(server.app, '/fhir/$export?_type=Patient', { authorization: owner });
    expectOutcome(await request(server.app).get(status).set('Authorization', other), 404, { expression: '_jobId' });
    const manifest = await manifestOf(server.app, status, owner);
    expectOutcome(await request(server.app).get(status).set('Authorization', other), 404);
    expectOutcome(await request(server.app).get(pathOf(manifest.output[0].url)).set('Authorization', other), 404);
    expectOutcome(await request(server.app).delete(status).set('Authorization', other), 404);
    // Without a token: 401, like every FHIR request.
    expect((await request(server.rawApp).get(pathOf(manifest.output[0].url))).status).toBe(401);
    expect(await download(server.app, manifest.output[0].url, owner)).toHaveLength(2);
  });

  it('audits the kick-off and the downloads as operations', async () => {
    const status = await kickOff(server.app, '/fhir/$export?_type=Medication');
    const manifest = await manifestOf(server.app, status);
    await request(server.app).get(pathOf(manifest.output[0].url)).set('X-Request-Id', 'exp-audit-download').expect(200);
    await request(server.app)
      .get('/fhir/$export?_type=Medication')
      .set('Prefer', 'respond-async')
      .set('X-Request-Id', 'exp-audit-kickoff')
      .expect(202);
    const [downloaded] = await auditsOf(server, 'exp-audit-download');
    const [kicked] = await auditsOf(server, 'exp-audit-kickoff');
    expect(downloaded.subtype?.map((s) => s.code)).toContain('export-file');
    expect(kicked.subtype?.map((s) => s.code)).toContain('export');
    expect(kicked.outcome).toBe('0');
  });
});

describe('cancel', () => {
  it('deletes a finished export: its status and files are gone', async () => {
    const status = await kickOff(server.app, '/fhir/$export?_type=Patient');
    const manifest = await manifestOf(server.app, status);
    const cancelled = await request(server.app).delete(status);
    expect(cancelled.status).toBe(202);
    expectOutcome(await request(server.app).get(status), 404);
    expectOutcome(await request(server.app).get(pathOf(manifest.output[0].url)), 404);
    const jobId = new URL(status, 'http://x').searchParams.get('_jobId');
    expect(await server.running.connection.db.collection('_export_chunks').countDocuments({ job: jobId })).toBe(0);
  });

  it('refuses DELETE on operations that are not a status URL', async () => {
    expectOutcome(await request(server.app).delete('/fhir/$export'), 405);
  });
});

describe('CapabilityStatement', () => {
  it('lists the export operations with their Bulk Data canonicals', async () => {
    const statement = (await request(server.app).get('/fhir/metadata')).body as CapabilityStatement;
    const rest = statement.rest?.[0];
    expect(rest?.operation).toContainEqual({
      name: 'export',
      definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export',
    });
    expect(rest?.operation?.map((o) => o.name)).not.toContain('export-file');
    const of = (type: string) => rest?.resource?.find((r) => r.type === type)?.operation ?? [];
    expect(of('Patient')).toContainEqual({
      name: 'export',
      definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export',
    });
    expect(of('Group')).toContainEqual({
      name: 'export',
      definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export',
    });
  });

  it.each(['export', 'patient-export', 'group-export'])(
    'ships OperationDefinition %s, valid for this server',
    async (id) => {
      const file = path.join(__dirname, `../../checks/OperationDefinition-${id}.json`);
      const definition = JSON.parse(fs.readFileSync(file, 'utf8')) as OperationDefinition;
      expect(definition.url).toBe(`http://hl7.org/fhir/uv/bulkdata/OperationDefinition/${id}`);
      await request(server.app)
        .put(`/fhir/OperationDefinition/${id}`)
        .set('Content-Type', FHIR_JSON)
        .send(definition)
        .expect(201);
    },
  );
});
