import type { Bundle, MedicationRequest, Parameters, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { createResource, expectOutcome, FHIR_JSON, snapshot, startTestServer, TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

const JSON_PATCH = 'application/json-patch+json';
const patient: Patient = { resourceType: 'Patient', name: [{ family: 'Nguyen', given: ['Lan'] }], gender: 'female' };

const fhirPathPatch = (...operations: object[][]): Parameters => ({
  resourceType: 'Parameters',
  parameter: operations.map((part) => ({ name: 'operation', part })) as Parameters['parameter'],
});
const replaceGender = (gender: string) =>
  fhirPathPatch([
    { name: 'type', valueCode: 'replace' },
    { name: 'path', valueString: 'Patient.gender' },
    { name: 'value', valueCode: gender },
  ]);

const patchRequest = (url: string, contentType: string, body: unknown) =>
  request(server.app).patch(`/fhir/${url}`).set('Content-Type', contentType).send(JSON.stringify(body));

async function historyLength(type: string, id: string): Promise<number> {
  const history = await request(server.app).get(`/fhir/${type}/${id}/_history`);
  return (history.body as Bundle).entry?.length ?? 0;
}

describe('PATCH with JSON Patch', () => {
  it('applies the patch and answers 200 with the new version, ETag, Last-Modified and Location', async () => {
    const created = await createResource(server.app, patient);
    const response = await patchRequest(`Patient/${created.id}`, JSON_PATCH, [
      { op: 'test', path: '/gender', value: 'female' },
      { op: 'replace', path: '/gender', value: 'other' },
      { op: 'add', path: '/birthDate', value: '1980-02-03' },
    ]);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect(response.headers.etag).toBe('W/"2"');
    expect(response.headers['last-modified']).toBeDefined();
    expect(response.headers.location).toMatch(new RegExp(`/fhir/Patient/${created.id}/_history/2$`));
    const body = response.body as Patient;
    expect(body.gender).toBe('other');
    expect(body.birthDate).toBe('1980-02-03');
    expect(body.meta?.versionId).toBe('2');
    const read = await request(server.app).get(`/fhir/Patient/${created.id}`);
    expect(read.body).toEqual(body);
    // History shows the patch as the update it amounts to.
    const history = (await request(server.app).get(`/fhir/Patient/${created.id}/_history`)).body as Bundle;
    expect(history.entry?.[0].request?.method).toBe('PUT');
  });

  it('answers 422 for a failed test operation and stores nothing', async () => {
    const created = await createResource(server.app, patient);
    const before = await snapshot(server.app, 'Patient', created.id as string);
    const response = await patchRequest(`Patient/${created.id}`, JSON_PATCH, [
      { op: 'replace', path: '/gender', value: 'male' },
      { op: 'test', path: '/name/0/family', value: 'Tran' },
    ]);
    expectOutcome(response, 422, { code: 'processing', expression: 'Patient.name[0].family' });
    expect(await snapshot(server.app, 'Patient', created.id as string)).toEqual(before);
  });

  it('answers 400 for a malformed patch document', async () => {
    const created = await createResource(server.app, patient);
    expectOutcome(await patchRequest(`Patient/${created.id}`, JSON_PATCH, { op: 'remove', path: '/gender' }), 400, {
      code: 'invalid',
    });
    expectOutcome(await patchRequest(`Patient/${created.id}`, JSON_PATCH, [{ op: 'frobnicate', path: '/x' }]), 400);
    const notJson = await request(server.app)
      .patch(`/fhir/Patient/${created.id}`)
      .set('Content-Type', JSON_PATCH)
      .send('[{"op": ');
    expectOutcome(notJson, 400, { code: 'structure' });
    expect(await historyLength('Patient', created.id as string)).toBe(1);
  });

  it('refuses to change the id or the resourceType (422)', async () => {
    const created = await createResource(server.app, patient);
    expectOutcome(
      await patchRequest(`Patient/${created.id}`, JSON_PATCH, [{ op: 'replace', path: '/id', value: 'x' }]),
      422,
      {
        expression: 'Patient.id',
      },
    );
    expectOutcome(
      await patchRequest(`Patient/${created.id}`, JSON_PATCH, [
        { op: 'replace', path: '/resourceType', value: 'Group' },
      ]),
      422,
      { expression: 'resourceType' },
    );
  });

  it('validates the patched resource like an update: an invalid result is 422 and nothing is stored', async () => {
    const created = await createResource(server.app, patient);
    const before = await snapshot(server.app, 'Patient', created.id as string);
    const response = await patchRequest(`Patient/${created.id}`, JSON_PATCH, [
      { op: 'replace', path: '/gender', value: 'bogus' },
    ]);
    expectOutcome(response, 422, { expression: 'Patient.gender' });
    expect(await snapshot(server.app, 'Patient', created.id as string)).toEqual(before);
    expect(await historyLength('Patient', created.id as string)).toBe(1);
  });
});

describe('PATCH with FHIRPath Patch', () => {
  it('applies a Parameters patch sent as application/fhir+json or application/json', async () => {
    const created = await createResource(server.app, patient);
    const response = await patchRequest(
      `Patient/${created.id}`,
      FHIR_JSON,
      fhirPathPatch(
        [
          { name: 'type', valueCode: 'add' },
          { name: 'path', valueString: 'Patient' },
          { name: 'name', valueString: 'birthDate' },
          { name: 'value', valueDate: '1980-02-03' },
        ],
        [
          { name: 'type', valueCode: 'insert' },
          { name: 'path', valueString: 'Patient.name[0].given' },
          { name: 'index', valueInteger: 0 },
          { name: 'value', valueString: 'Thi' },
        ],
      ),
    );
    expect(response.status).toBe(200);
    expect(response.headers.etag).toBe('W/"2"');
    expect(response.body.birthDate).toBe('1980-02-03');
    expect(response.body.name[0].given).toEqual(['Thi', 'Lan']);
    const plain = await patchRequest(`Patient/${created.id}`, 'application/json', replaceGender('male'));
    expect(plain.status).toBe(200);
    expect(plain.body.gender).toBe('male');
    expect(plain.headers.etag).toBe('W/"3"');
  });

  it('answers 422 naming the operation when the path matches nothing', async () => {
    const created = await createResource(server.app, patient);
    const response = await patchRequest(
      `Patient/${created.id}`,
      FHIR_JSON,
      fhirPathPatch([
        { name: 'type', valueCode: 'replace' },
        { name: 'path', valueString: 'Patient.birthDate' },
        { name: 'value', valueDate: '1990-01-01' },
      ]),
    );
    expectOutcome(response, 422, { code: 'processing', expression: 'Parameters.parameter[0]' });
  });

  it('answers 400 for a malformed Parameters patch or a non-Parameters body', async () => {
    const created = await createResource(server.app, patient);
    const unknownType = fhirPathPatch([
      { name: 'type', valueCode: 'upsert' },
      { name: 'path', valueString: 'Patient.gender' },
    ]);
    expectOutcome(await patchRequest(`Patient/${created.id}`, FHIR_JSON, unknownType), 400, {
      expression: 'Parameters.parameter[0]',
    });
    expectOutcome(await patchRequest(`Patient/${created.id}`, FHIR_JSON, { ...patient, gender: 'male' }), 400);
    expectOutcome(await patchRequest(`Patient/${created.id}`, FHIR_JSON, [{ op: 'remove', path: '/gender' }]), 400);
    expect(await historyLength('Patient', created.id as string)).toBe(1);
  });

  it('changes nothing and creates no version when the patch leaves the resource as it was', async () => {
    const created = await createResource(server.app, patient);
    const response = await patchRequest(`Patient/${created.id}`, FHIR_JSON, replaceGender('female'));
    expect(response.status).toBe(200);
    expect(response.headers.etag).toBe('W/"1"');
    expect(await historyLength('Patient', created.id as string)).toBe(1);
  });
});

describe('PATCH preconditions and errors', () => {
  it('honours If-Match: the current version patches, another version is 412 and nothing changes', async () => {
    const created = await createResource(server.app, patient);
    const stale = await patchRequest(`Patient/${created.id}`, FHIR_JSON, replaceGender('male')).set(
      'If-Match',
      'W/"7"',
    );
    expectOutcome(stale, 412, { code: 'conflict' });
    expect(await historyLength('Patient', created.id as string)).toBe(1);
    const current = await patchRequest(`Patient/${created.id}`, FHIR_JSON, replaceGender('male')).set(
      'If-Match',
      'W/"1"',
    );
    expect(current.status).toBe(200);
    expect(current.headers.etag).toBe('W/"2"');
  });

  it('answers 415 for a Content-Type that is not a patch format', async () => {
    const created = await createResource(server.app, patient);
    const merge = await request(server.app)
      .patch(`/fhir/Patient/${created.id}`)
      .set('Content-Type', 'application/merge-patch+json')
      .send(JSON.stringify({ gender: 'male' }));
    expectOutcome(merge, 415, { code: 'not-supported' });
    const form = await request(server.app)
      .patch(`/fhir/Patient/${created.id}`)
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send('gender=male');
    expectOutcome(form, 415, { code: 'not-supported' });
  });

  it('answers 404 for a resource that does not exist and 410 for a deleted one', async () => {
    expectOutcome(await patchRequest('Patient/not-there', FHIR_JSON, replaceGender('male')), 404, {
      code: 'not-found',
    });
    const created = await createResource(server.app, patient);
    await request(server.app).delete(`/fhir/Patient/${created.id}`).expect(200);
    expectOutcome(await patchRequest(`Patient/${created.id}`, FHIR_JSON, replaceGender('male')), 410, {
      code: 'deleted',
    });
  });

  it('honours Prefer: return=minimal and return=OperationOutcome like an update', async () => {
    const created = await createResource(server.app, patient);
    const minimal = await patchRequest(`Patient/${created.id}`, FHIR_JSON, replaceGender('male')).set(
      'Prefer',
      'return=minimal',
    );
    expect(minimal.status).toBe(200);
    expect(minimal.text).toBe('');
    expect(minimal.headers.etag).toBe('W/"2"');
    const oo = await patchRequest(`Patient/${created.id}`, FHIR_JSON, replaceGender('other')).set(
      'Prefer',
      'return=OperationOutcome',
    );
    expect(oo.body.resourceType).toBe('OperationOutcome');
    expect(oo.body.issue[0].severity).toBe('information');
  });
});

describe('PATCH in Bundles', () => {
  const binaryJsonPatch = (operations: object[]) => ({
    resourceType: 'Binary' as const,
    contentType: JSON_PATCH,
    data: Buffer.from(JSON.stringify(operations)).toString('base64'),
  });
  const postBundle = (bundle: Bundle) =>
    request(server.app).post('/fhir').set('Content-Type', FHIR_JSON).send(JSON.stringify(bundle));

  it('applies both forms in a batch, each entry answered on its own', async () => {
    const a = await createResource(server.app, patient);
    const b = await createResource(server.app, patient);
    const response = await postBundle({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: replaceGender('male'), request: { method: 'PATCH', url: `Patient/${a.id}` } },
        {
          resource: binaryJsonPatch([{ op: 'replace', path: '/gender', value: 'other' }]),
          request: { method: 'PATCH', url: `Patient/${b.id}` },
        },
        { resource: replaceGender('male'), request: { method: 'PATCH', url: 'Patient/not-there' } },
        {
          resource: binaryJsonPatch([{ op: 'test', path: '/gender', value: 'male' }]),
          request: { method: 'PATCH', url: `Patient/${b.id}` },
        },
      ],
    });
    expect(response.status).toBe(200);
    const entries = (response.body as Bundle).entry ?? [];
    expect(entries.map((e) => e.response?.status)).toEqual([
      '200 OK',
      '200 OK',
      '404 Not Found',
      '422 Unprocessable Entity',
    ]);
    expect(entries[0].response?.etag).toBe('W/"2"');
    expect(entries[0].response?.lastModified).toBeDefined();
    expect((entries[0].resource as Patient).gender).toBe('male');
    expect((entries[1].resource as Patient).gender).toBe('other');
    expect((await request(server.app).get(`/fhir/Patient/${b.id}`)).body.gender).toBe('other');
  });

  it('runs PATCH entries of a transaction after its creates, with references to new resources rewritten', async () => {
    const rx = await createResource<MedicationRequest>(server.app, {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      medicationCodeableConcept: { text: 'buprenorphine/naloxone 8/2 mg' },
      subject: { reference: 'Patient/placeholder' },
    });
    const existing = await createResource(server.app, patient);
    const response = await postBundle({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: fhirPathPatch([
            { name: 'type', valueCode: 'replace' },
            { name: 'path', valueString: 'MedicationRequest.subject' },
            { name: 'value', valueReference: { reference: 'urn:uuid:0c4c7f3e-0000-4000-8000-00000000aaaa' } },
          ]),
          request: { method: 'PATCH', url: `MedicationRequest/${rx.id}` },
        },
        {
          resource: binaryJsonPatch([{ op: 'add', path: '/birthDate', value: '1975-05-05' }]),
          request: { method: 'PATCH', url: `Patient/${existing.id}` },
        },
        {
          fullUrl: 'urn:uuid:0c4c7f3e-0000-4000-8000-00000000aaaa',
          resource: { resourceType: 'Patient', name: [{ family: 'New' }] },
          request: { method: 'POST', url: 'Patient' },
        },
      ],
    });
    expect(response.status).toBe(200);
    const entries = (response.body as Bundle).entry ?? [];
    expect(entries.map((e) => e.response?.status)).toEqual(['200 OK', '200 OK', '201 Created']);
    expect(entries[0].response?.etag).toBe('W/"2"');
    expect(entries[0].response?.lastModified).toBeDefined();
    const newPatientId = (entries[2].resource as Patient).id;
    const patchedRx = (await request(server.app).get(`/fhir/MedicationRequest/${rx.id}`)).body as MedicationRequest;
    expect(patchedRx.subject?.reference).toBe(`Patient/${newPatientId}`);
    expect((await request(server.app).get(`/fhir/Patient/${existing.id}`)).body.birthDate).toBe('1975-05-05');
  });

  it('rolls the whole transaction back when a PATCH entry fails validation', async () => {
    const created = await createResource(server.app, patient);
    const before = await snapshot(server.app, 'Patient', created.id as string);
    const response = await postBundle({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          resource: { resourceType: 'Patient', name: [{ family: 'Never stored' }] },
          request: { method: 'POST', url: 'Patient' },
        },
        {
          resource: binaryJsonPatch([{ op: 'replace', path: '/gender', value: 'bogus' }]),
          request: { method: 'PATCH', url: `Patient/${created.id}` },
        },
      ],
    });
    expectOutcome(response, 422, { expression: 'Bundle.entry[1]' });
    expect(await snapshot(server.app, 'Patient', created.id as string)).toEqual(before);
    const search = await server.running.connection.db.collection('Patient').countDocuments({
      'resource.name.family': 'Never stored',
    });
    expect(search).toBe(0);
  });

  it('answers 400 for a PATCH entry without a resource and 415 for a Binary of another content type', async () => {
    const created = await createResource(server.app, patient);
    const missing = await postBundle({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ request: { method: 'PATCH', url: `Patient/${created.id}` } }],
    });
    expectOutcome(missing, 400, { expression: 'Bundle.entry[0].resource' });
    const wrongType = await postBundle({
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          resource: { resourceType: 'Binary', contentType: 'text/plain', data: 'aGVsbG8=' },
          request: { method: 'PATCH', url: `Patient/${created.id}` },
        },
      ],
    });
    expect(wrongType.body.entry[0].response.status).toBe('415 Unsupported Media Type');
  });
});
