import type { Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { createResource, expectOutcome, FHIR_JSON, snapshot, startTestServer, TestServer } from '../support/server';

let server: TestServer;
let stored: Patient;
beforeAll(async () => {
  server = await startTestServer(__filename, { maxBodyBytes: 64 * 1024 });
  stored = await createResource(server.app, { resourceType: 'Patient', name: [{ family: 'Okonkwo' }] });
});
afterAll(async () => server.close());

/** Runs a bad request and proves it changed nothing stored. */
async function rejectedWithoutChange(send: () => Promise<request.Response>): Promise<request.Response> {
  const before = await snapshot(server.app, 'Patient', stored.id as string);
  const typeHistoryBefore = (await request(server.app).get('/fhir/Patient/_history?_count=1000')).body.entry.length;
  const response = await send();
  expect(await snapshot(server.app, 'Patient', stored.id as string)).toEqual(before);
  expect((await request(server.app).get('/fhir/Patient/_history?_count=1000')).body.entry.length).toBe(
    typeHistoryBefore,
  );
  return response;
}

const put = (path: string, body: string | object, contentType = FHIR_JSON) =>
  request(server.app).put(path).set('Content-Type', contentType).send(body);
const post = (path: string, body: string | object, contentType = FHIR_JSON) =>
  request(server.app).post(path).set('Content-Type', contentType).send(body);

describe('bad input answers with an OperationOutcome and changes nothing', () => {
  it('malformed JSON: 400 structure', async () => {
    const response = await rejectedWithoutChange(() =>
      put(`/fhir/Patient/${stored.id}`, '{"resourceType": "Patient", "id": '),
    );
    expectOutcome(response, 400, { code: 'structure' });
    expectOutcome(await rejectedWithoutChange(() => post('/fhir/Patient', '{oops}')), 400, { code: 'structure' });
  });

  it('a body that is not an object: 400', async () => {
    expectOutcome(await rejectedWithoutChange(() => post('/fhir/Patient', '[1,2]')), 400);
    expectOutcome(await rejectedWithoutChange(() => post('/fhir/Patient', '"text"')), 400);
  });

  it('resourceType missing or not matching the URL: 400 pointing at resourceType', async () => {
    const missing = await rejectedWithoutChange(() => post('/fhir/Patient', { name: [{ family: 'X' }] }));
    expectOutcome(missing, 400, { expression: 'resourceType' });
    const mismatch = await rejectedWithoutChange(() =>
      put(`/fhir/Patient/${stored.id}`, { resourceType: 'Observation', id: stored.id }),
    );
    expectOutcome(mismatch, 400, { expression: 'resourceType' });
  });

  it('PUT with a body id that differs from the URL, or none: 400 pointing at the id', async () => {
    const other = await rejectedWithoutChange(() => put(`/fhir/Patient/${stored.id}`, { ...stored, id: 'another-id' }));
    expectOutcome(other, 400, { expression: 'Patient.id' });
    const none = await rejectedWithoutChange(() => put(`/fhir/Patient/${stored.id}`, { ...stored, id: undefined }));
    expectOutcome(none, 400, { expression: 'Patient.id' });
  });

  it('invalid id syntax: 400', async () => {
    expectOutcome(await request(server.app).get('/fhir/Patient/bad_id!'), 400, { expression: 'Patient.id' });
    const tooLong = 'a'.repeat(65);
    expectOutcome(await request(server.app).get(`/fhir/Patient/${tooLong}`), 400);
    expectOutcome(
      await rejectedWithoutChange(() => put('/fhir/Patient/bad_id!', { resourceType: 'Patient', id: 'bad_id!' })),
      400,
    );
  });

  it('unknown resource type: 404', async () => {
    expectOutcome(await request(server.app).get('/fhir/Pateint/123'), 404, { code: 'not-found' });
    expectOutcome(await rejectedWithoutChange(() => post('/fhir/Pateint', { resourceType: 'Pateint' })), 404);
  });

  it('unknown id: 404; unknown version: 404', async () => {
    expectOutcome(await request(server.app).get('/fhir/Patient/does-not-exist'), 404, { code: 'not-found' });
    expectOutcome(await request(server.app).get(`/fhir/Patient/${stored.id}/_history/99`), 404);
    expectOutcome(await request(server.app).get(`/fhir/Patient/${stored.id}/_history/x`), 404);
    expectOutcome(await request(server.app).get('/fhir/Patient/does-not-exist/_history'), 404);
  });

  it('unsupported method: 405', async () => {
    expectOutcome(await rejectedWithoutChange(() => request(server.app).delete('/fhir/metadata')), 405);
    expectOutcome(
      await rejectedWithoutChange(() => request(server.app).put(`/fhir/Patient/${stored.id}/_history/1`)),
      405,
    );
    expectOutcome(await request(server.app).options('/fhir/Patient'), 405);
  });

  it('body over the size limit: 413', async () => {
    const big = {
      ...stored,
      text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(70_000)}</div>` },
    };
    expectOutcome(await rejectedWithoutChange(() => put(`/fhir/Patient/${stored.id}`, big)), 413, {
      code: 'too-costly',
    });
  });

  it('XML or another content type: 415; asking for XML: 406', async () => {
    const xml = '<Patient xmlns="http://hl7.org/fhir"><id value="x"/></Patient>';
    expectOutcome(await rejectedWithoutChange(() => post('/fhir/Patient', xml, 'application/fhir+xml')), 415, {
      code: 'not-supported',
    });
    expectOutcome(await rejectedWithoutChange(() => post('/fhir/Patient', 'name=x', 'text/plain')), 415);
    expectOutcome(
      await request(server.app).get(`/fhir/Patient/${stored.id}`).set('Accept', 'application/fhir+xml'),
      406,
    );
    expectOutcome(await request(server.app).get(`/fhir/Patient/${stored.id}?_format=xml`), 406);
    const acceptAny = await request(server.app)
      .get(`/fhir/Patient/${stored.id}`)
      .set('Accept', 'application/fhir+xml, */*;q=0.1');
    expect(acceptAny.status).toBe(200);
  });

  it('version conflict: If-Match on an older version is 412; malformed If-Match is 400', async () => {
    await put(`/fhir/Patient/${stored.id}`, { ...stored, gender: 'unknown' }).expect(200);
    const current = (await request(server.app).get(`/fhir/Patient/${stored.id}`)).body as Patient;
    const stale = await rejectedWithoutChange(() =>
      put(`/fhir/Patient/${stored.id}`, { ...current, gender: 'male' }).set('If-Match', 'W/"1"'),
    );
    expectOutcome(stale, 412, { code: 'conflict' });
    const malformed = await rejectedWithoutChange(() =>
      put(`/fhir/Patient/${stored.id}`, { ...current, gender: 'male' }).set('If-Match', 'version-one'),
    );
    expectOutcome(malformed, 400);
  });

  it('deleted resource: 410', async () => {
    const doomed = await createResource<Patient>(server.app, { resourceType: 'Patient', name: [{ family: 'Gone' }] });
    await request(server.app).delete(`/fhir/Patient/${doomed.id}`).expect(200);
    expectOutcome(await request(server.app).get(`/fhir/Patient/${doomed.id}`), 410, { code: 'deleted' });
  });

  it('unknown paths and operations: 404', async () => {
    expectOutcome(await request(server.app).get('/fhir/Patient/1/2/3/4/5'), 404);
    expectOutcome(
      await request(server.app).post('/fhir/$no-such-operation').set('Content-Type', FHIR_JSON).send({}),
      404,
      {
        code: 'not-supported',
      },
    );
    expectOutcome(await request(server.app).get('/nowhere'), 404);
  });

  it('bad history parameters: 400 naming the parameter', async () => {
    expectOutcome(await request(server.app).get('/fhir/Patient/_history?_since=yesterday'), 400, {
      expression: '_since',
    });
    expectOutcome(await request(server.app).get('/fhir/Patient/_history?_count=-1'), 400, { expression: '_count' });
    expectOutcome(await request(server.app).get('/fhir/Patient/_history?_page=abc.def'), 400, { expression: '_page' });
    expectOutcome(await request(server.app).get('/fhir/_history?foo=bar'), 400, { expression: 'foo' });
  });
});
