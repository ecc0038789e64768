import request from 'supertest';
import { expectOutcome, FHIR_JSON, snapshot, startTestServer, TestServer } from '../support/server';

// Issue 15 over HTTP: decimals keep their written precision through the store (and every way back
// out), integers written with a fraction are refused, If-Match of any other version is 412.

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

const JSON_PATCH = 'application/json-patch+json';
const send = (method: 'post' | 'put' | 'patch', path: string, text: string, type = FHIR_JSON) =>
  request(server.app)[method](`/fhir/${path}`).set('Content-Type', type).send(text);
const get = (path: string) => request(server.app).get(`/fhir/${path}`);

/** A weight of 70.50 kg with a component written 0.10 and an integer interpretation count. */
const observationText = (id?: string, value = '70.50') =>
  `{"resourceType":"Observation",${id ? `"id":"${id}",` : ''}"status":"final",` +
  `"code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"subject":{"reference":"Patient/p1"},` +
  `"valueQuantity":{"value":${value},"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"},` +
  `"component":[{"code":{"text":"fraction"},"valueQuantity":{"value":0.10}},{"code":{"text":"count"},"valueInteger":3}]}`;

describe('decimals keep their written precision end to end', () => {
  let id: string;

  it('create answers, stores and reads back 70.50 and 0.10 as written', async () => {
    const created = await send('post', 'Observation', observationText());
    expect(created.status).toBe(201);
    expect(created.text).toContain('"value":70.50');
    expect(created.text).toContain('"value":0.10');
    id = (created.body as { id: string }).id;

    const read = await get(`Observation/${id}`);
    expect(read.text).toContain('"value":70.50');
    expect(read.text).toContain('"value":0.10');
    expect((await get(`Observation/${id}/_history/1`)).text).toContain('"value":70.50');
    expect((await get(`Observation/${id}/_history`)).text).toContain('"value":70.50');
    expect((await get(`Observation?_id=${id}`)).text).toContain('"value":70.50');
    expect((await get(`Observation?_id=${id}&_elements=valueQuantity`)).text).toContain('"value":70.50');
    expect((await get(`Observation/${id}?_pretty=true`)).text).toContain('"value": 70.50');
  });

  it('the database holds a double (so search compares numbers) and the text beside it', async () => {
    const doc = await server.running.connection.db.collection('Observation').findOne({ _id: id as never });
    expect((doc?.resource as { valueQuantity: { value: number } }).valueQuantity.value).toBe(70.5);
    expect(doc?.nt).toEqual([
      { p: '/valueQuantity/value', t: '70.50' },
      { p: '/component/0/valueQuantity/value', t: '0.10' },
    ]);
    const found = await get('Observation?value-quantity=70.5');
    expect((found.body as { total: number }).total).toBe(1);
  });

  it('re-sending the same text is a no-op; 70.5 instead of 70.50 is a new version', async () => {
    const same = await send('put', `Observation/${id}`, observationText(id));
    expect(same.status).toBe(200);
    expect(same.headers.etag).toBe('W/"1"');
    const changed = await send('put', `Observation/${id}`, observationText(id, '70.5'));
    expect(changed.headers.etag).toBe('W/"2"');
    expect(changed.text).toContain('"value":70.5,');
    expect(changed.text).toContain('"value":0.10');
    expect((await get(`Observation/${id}/_history/1`)).text).toContain('"value":70.50');
  });

  it('a JSON Patch keeps what it does not touch and writes what it sets as written', async () => {
    const patched = await send(
      'patch',
      `Observation/${id}`,
      '[{"op":"replace","path":"/valueQuantity/value","value":71.250},{"op":"add","path":"/component/-","value":{"code":{"text":"x"},"valueQuantity":{"value":5.0}}}]',
      JSON_PATCH,
    );
    expect(patched.status).toBe(200);
    const read = (await get(`Observation/${id}`)).text;
    expect(read).toContain('"value":71.250');
    expect(read).toContain('"value":0.10');
    expect(read).toContain('"value":5.0');
  });

  it('a FHIRPath Patch keeps what it does not touch', async () => {
    const patch = {
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'replace' },
            { name: 'path', valueString: 'Observation.status' },
            { name: 'value', valueCode: 'amended' },
          ],
        },
      ],
    };
    const patched = await send('patch', `Observation/${id}`, JSON.stringify(patch));
    expect(patched.status).toBe(200);
    expect(patched.text).toContain('"value":71.250');
    expect(patched.text).toContain('"value":0.10');
  });

  it('a transaction stores its entries as written, references rewritten', async () => {
    const bundle =
      `{"resourceType":"Bundle","type":"transaction","entry":[` +
      `{"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient","name":[{"family":"Decimal"}]},"request":{"method":"POST","url":"Patient"}},` +
      `{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"},"valueQuantity":{"value":3.000}},"request":{"method":"POST","url":"Observation"}}]}`;
    const response = await send('post', '', bundle);
    expect(response.status).toBe(200);
    expect(response.text).toContain('"value":3.000');
    const location = (response.body as { entry: { response: { location: string } }[] }).entry[1].response.location;
    const read = await get(location.replace(/^.*\/fhir\//, '').replace(/\/_history\/\d+$/, ''));
    expect(read.text).toContain('"value":3.000');
    expect(read.text).toMatch(/"reference":"Patient\/[^"]+"/);
  });
});

describe('integers as written', () => {
  it('an integer written 3.0 or 3e0 is refused with its expression, and nothing is stored', async () => {
    for (const written of ['3.0', '3e0']) {
      const text = observationText().replace('"valueInteger":3', `"valueInteger":${written}`);
      const before = await server.running.connection.db.collection('Observation').countDocuments({});
      const response = await send('post', 'Observation', text);
      expectOutcome(response, 422, { code: 'value', expression: 'Observation.component[1].valueInteger' });
      expect(JSON.stringify(response.body)).toContain(`The value '${written}' is not a valid integer`);
      expect(await server.running.connection.db.collection('Observation').countDocuments({})).toBe(before);
    }
  });

  it('so is one in a Bundle entry (with the entry in the expression)', async () => {
    const entry = observationText().replace('"valueInteger":3', '"valueInteger":3.0');
    const bundle = `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":${entry},"request":{"method":"POST","url":"Observation"}}]}`;
    const response = await send('post', '', bundle);
    expect(response.status).toBe(422);
    expect(JSON.stringify(response.body)).toContain('component[1].valueInteger');
  });
});

describe('If-Match', () => {
  const patientText = (id: string, family: string) =>
    `{"resourceType":"Patient","id":"${id}","name":[{"family":"${family}"}]}`;
  const putWith = (id: string, family: string, ifMatch: string) =>
    send('put', `Patient/${id}`, patientText(id, family)).set('If-Match', ifMatch);

  beforeAll(async () => {
    expect((await send('put', 'Patient/im1', patientText('im1', 'One'))).status).toBe(201);
  });

  it.each(['W/"abc"', '"abc"', 'W/"2"', 'W/""', '"1.0"'])(
    'a well-formed ETag of no current version (%s) is 412 and changes nothing',
    async (tag) => {
      const before = await snapshot(server.app, 'Patient', 'im1');
      expectOutcome(await putWith('im1', 'Changed', tag), 412, { code: 'conflict' });
      expectOutcome(
        await send('patch', 'Patient/im1', '[{"op":"add","path":"/gender","value":"male"}]', JSON_PATCH).set(
          'If-Match',
          tag,
        ),
        412,
      );
      expectOutcome(await request(server.app).delete('/fhir/Patient/im1').set('If-Match', tag), 412);
      expect(await snapshot(server.app, 'Patient', 'im1')).toEqual(before);
    },
  );

  it.each(['version-one', 'W/abc', 'W/"a"b"', '"unterminated', 'W/"1", junk'])(
    'a malformed one (%s) is 400',
    async (tag) => {
      const before = await snapshot(server.app, 'Patient', 'im1');
      expectOutcome(await putWith('im1', 'Changed', tag), 400, { code: 'invalid' });
      expect(await snapshot(server.app, 'Patient', 'im1')).toEqual(before);
    },
  );

  it('the current version (as W/"1", "1", 1, in a list, or *) passes', async () => {
    expect((await putWith('im1', 'A', 'W/"1"')).headers.etag).toBe('W/"2"');
    expect((await putWith('im1', 'B', '"2"')).headers.etag).toBe('W/"3"');
    expect((await putWith('im1', 'C', '3')).headers.etag).toBe('W/"4"');
    expect((await putWith('im1', 'D', 'W/"abc", W/"4"')).headers.etag).toBe('W/"5"');
    expect((await putWith('im1', 'E', '*')).headers.etag).toBe('W/"6"');
  });

  it('* on a resource that does not exist is 412', async () => {
    expectOutcome(await putWith('im-none', 'X', '*'), 412);
  });

  it('ifMatch in a transaction entry: W/"abc" is 412 for the whole transaction, malformed is 400', async () => {
    const bundle = (ifMatch: string) =>
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            resource: { resourceType: 'Patient', id: 'im1', name: [{ family: 'Bundle' }] },
            request: { method: 'PUT', url: 'Patient/im1', ifMatch },
          },
        ],
      });
    const before = await snapshot(server.app, 'Patient', 'im1');
    expectOutcome(await send('post', '', bundle('W/"abc"')), 412);
    expectOutcome(await send('post', '', bundle('nonsense')), 400);
    expect(await snapshot(server.app, 'Patient', 'im1')).toEqual(before);
    const batch = JSON.parse(bundle('W/"abc"')) as { type: string };
    batch.type = 'batch';
    const answered = await send('post', '', JSON.stringify(batch));
    expect(answered.status).toBe(200);
    expect((answered.body as { entry: { response: { status: string } }[] }).entry[0].response.status).toMatch(/^412/);
  });
});
