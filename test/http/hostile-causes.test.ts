// One test per cause the hostile-input probe of issue 11 found (500s, stalls, leaks): each asserts the
// status, the OperationOutcome and its expression, and that nothing was stored.
import type { OperationOutcome, Patient } from '@medplum/fhirtypes';
import { evaluate } from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import pino from 'pino';
import request from 'supertest';
import { createServerContext, type RunningContext } from '../../src/app-context';
import { loadConfig } from '../../src/config';
import { createApp } from '../../src/http/app';
import { answerClientError } from '../../src/http/client-error';
import { resourceTypes } from '../../src/fhir/definitions';
import {
  createResource,
  databaseNameFor,
  expectOutcome,
  FHIR_JSON,
  startTestServer,
  TestServer,
} from '../support/server';
import { adminAuthorization, TEST_AUTH } from '../support/tokens';

let server: TestServer;
let stored: Patient;
const SECRET = 'Okafor-Secret-7731';

beforeAll(async () => {
  server = await startTestServer(__filename);
  stored = await createResource(server.app, {
    resourceType: 'Patient',
    gender: 'female',
    name: [{ family: SECRET, given: ['Ada'] }],
  });
});
afterAll(async () => server.close());

// Versions of the record; the audit trail's own events (stored for every request, refused or not) aside.
// An `$in` of the types, not `$ne`, so that the engine counts in SQL rather than decoding every version.
const RECORD_TYPES = resourceTypes().filter((type) => type !== 'AuditEvent');
const versions = () =>
  server.running.connection.db.collection('_history').countDocuments({ type: { $in: RECORD_TYPES } });

/** Sends a request that must be refused: the answer, once it is known that nothing was stored. */
async function refused(send: () => request.Test | Promise<request.Response>): Promise<request.Response> {
  const before = await versions();
  const response = await send();
  expect(await versions()).toBe(before);
  return response;
}

const post = (path: string, body: string | Buffer, contentType = FHIR_JSON) =>
  request(server.app).post(path).set('Content-Type', contentType).send(body);
const patch = (path: string, body: string, contentType: string) =>
  request(server.app).patch(path).set('Content-Type', contentType).send(body);
const bundle = (entry: unknown) => JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry });
const form = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();
const FORM = 'application/x-www-form-urlencoded';

/** n levels of nested extensions as JSON text (JSON.stringify itself recurses). */
function nestedExtensions(levels: number): string {
  const open = '{"url":"http://example.org/x","extension":['.repeat(levels - 1);
  const close = ']}'.repeat(levels - 1);
  return `{"resourceType":"Patient","extension":[${open}{"url":"http://example.org/x","valueString":"x"}${close}]}`;
}

describe('handlers no longer trust JSON shapes nobody checked', () => {
  it('a Bundle whose entry is an object: 400 at Bundle.entry', async () => {
    const response = await refused(() => post('/fhir', bundle({ request: { method: 'POST', url: 'Patient' } })));
    expectOutcome(response, 400, { expression: 'Bundle.entry' });
  });

  it('a Bundle entry that is null: 400 at that entry', async () => {
    const entry = [{ resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }, null];
    expectOutcome(await refused(() => post('/fhir', bundle(entry))), 400, { expression: 'Bundle.entry[1]' });
  });

  it('a Bundle entry whose request.url is a number: 400 at request.url', async () => {
    const entry = [{ resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 42 } }];
    expectOutcome(await refused(() => post('/fhir', bundle(entry))), 400, {
      expression: 'Bundle.entry[0].request.url',
    });
  });

  it('a Bundle that breaks R4 elsewhere (fullUrl a number) is validated like a resource: 400 at the element', async () => {
    const entry = [{ fullUrl: 7, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }];
    expectOutcome(await refused(() => post('/fhir', bundle(entry))), 400, { expression: 'Bundle.entry[0].fullUrl' });
  });

  it('an ifNoneExist that is not a string: 400 at it', async () => {
    const entry = [
      { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient', ifNoneExist: 5 } },
    ];
    expectOutcome(await refused(() => post('/fhir', bundle(entry))), 400, {
      expression: 'Bundle.entry[0].request.ifNoneExist',
    });
  });

  it('$medication-review with a Parameters whose parameter is not an array: 400 at Parameters.parameter', async () => {
    const body = JSON.stringify({ resourceType: 'Parameters', parameter: { name: 'date', valueDate: '2026-01-01' } });
    const response = await refused(() => post(`/fhir/Patient/${stored.id}/$medication-review`, body));
    expectOutcome(response, 400, { expression: 'Parameters.parameter' });
  });

  it('$medication-review with a null body: 400 at Parameters', async () => {
    const response = await refused(() => post(`/fhir/Patient/${stored.id}/$medication-review`, 'null'));
    expectOutcome(response, 400, { expression: 'Parameters' });
  });

  it('a FHIRPath Patch whose parameter is not an array: 400 at Parameters.parameter', async () => {
    const body = JSON.stringify({ resourceType: 'Parameters', parameter: { name: 'operation' } });
    const response = await refused(() => patch(`/fhir/Patient/${stored.id}`, body, FHIR_JSON));
    expectOutcome(response, 400, { expression: 'Parameters.parameter' });
  });

  it('a FHIRPath Patch that is null: 400 at Parameters', async () => {
    expectOutcome(await refused(() => patch(`/fhir/Patient/${stored.id}`, 'null', FHIR_JSON)), 400, {
      expression: 'Parameters',
    });
  });

  it('a conditional update whose body id is a query operator: 400 at the id, no look-up by it', async () => {
    const body = JSON.stringify({ resourceType: 'Patient', id: { $ne: null } });
    const response = await refused(() =>
      request(server.app).put('/fhir/Patient?identifier=urn:x|nobody').set('Content-Type', FHIR_JSON).send(body),
    );
    expectOutcome(response, 400, { expression: 'Patient.id' });
  });
});

describe('paging tokens', () => {
  it('a _cursor with non-ASCII characters: 400 at _cursor', async () => {
    const response = await request(server.app).get('/fhir/Patient').query({ _cursor: 'eyJx.ééééééééééééééééééééé' });
    expectOutcome(response, 400, { expression: '_cursor' });
  });

  it('a _page with non-ASCII characters: 400 at _page', async () => {
    const response = await request(server.app).get('/fhir/Patient/_history').query({ _page: 'ü.ü' });
    expectOutcome(response, 400, { expression: '_page' });
  });
});

describe('nesting depth', () => {
  it('200 levels of extensions: 400 naming the element, before the engine sees it', async () => {
    const response = await refused(() => post('/fhir/Patient', nestedExtensions(200)));
    expectOutcome(response, 400, { code: 'structure' });
    expect(response.body.issue[0].expression[0]).toMatch(/^Patient\.extension\[0\](\.extension\[0\])+$/);
  });

  it('2,000 levels of extensions: 400, not a stack overflow in the validator', async () => {
    const response = await refused(() => post('/fhir/Patient', nestedExtensions(2000)));
    expectOutcome(response, 400, { code: 'structure' });
  });

  it('a JSON Patch whose value is 10,000 levels deep: 400, not a stack overflow', async () => {
    const value = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const body = `[{"op":"add","path":"/extension","value":${value}}]`;
    const response = await refused(() => patch(`/fhir/Patient/${stored.id}`, body, 'application/json-patch+json'));
    expectOutcome(response, 400, { code: 'structure' });
    expect(response.body.issue[0].expression[0]).toMatch(/^\[0\]\.value(\[0\])+$/);
  });

  it('the deepest resource the limit lets through is stored and read back whole', async () => {
    // MAX_JSON_DEPTH counts objects and arrays; 31 levels of extensions nest 63 deep.
    const created = await post('/fhir/Patient', nestedExtensions(31));
    expect(created.status).toBe(201);
    const read = await request(server.app).get(`/fhir/Patient/${created.body.id}`);
    expect(read.body.extension).toEqual(created.body.extension);
  });
});

describe('Content-Encoding', () => {
  const body = JSON.stringify({ resourceType: 'Patient', gender: 'male' });
  it.each(['gzip', 'br', 'deflate'])('%s declared on a plain body: 400 at Content-Encoding', async (encoding) => {
    const response = await refused(() =>
      request(server.app)
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .set('Content-Encoding', encoding)
        .send(body),
    );
    expectOutcome(response, 400, { expression: 'Content-Encoding' });
  });

  it('an unknown encoding: 415 at Content-Encoding', async () => {
    const response = await refused(() =>
      request(server.app)
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .set('Content-Encoding', 'x-rot13')
        .send(body),
    );
    expectOutcome(response, 415, { expression: 'Content-Encoding' });
  });

  it.each([
    ['gzip', gzipSync],
    ['br', brotliCompressSync],
    ['deflate', deflateSync],
  ])('a body really encoded with %s is read', async (encoding, encode) => {
    const response = await request(server.app)
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .set('Content-Encoding', encoding)
      // superagent would serialise a Buffer as JSON for a JSON media type: the bytes go as they are.
      .serialize((bytes: Buffer) => bytes as unknown as string)
      .send(encode(Buffer.from(body)));
    expect(response.status).toBe(201);
  });
});

describe('a client that hangs up, or sends more than Node reads', () => {
  let running: RunningContext;
  let http: Server;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const config = {
      ...loadConfig({}),
      databaseName: `${databaseNameFor(__filename)}_abort`.slice(0, 60),
      auth: TEST_AUTH,
    };
    running = await createServerContext(config, process.env.MONGODB_URI as string, pino({ level: 'info' }, sink));
    http = createServer(createApp(running.context)).listen(0, '127.0.0.1');
    http.on('clientError', answerClientError);
    await once(http, 'listening');
  });
  afterAll(async () => {
    http.close();
    await running.connection.db.dropDatabase();
    await running.close();
  });

  it('is logged as a 499 the client aborted, not as a 500', async () => {
    const { port } = http.address() as { port: number };
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    // Authenticated: a client without a token is refused before its body is read.
    socket.write(
      `POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nAuthorization: ${await adminAuthorization()}\r\n` +
        'Content-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{"resource',
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.destroy();
    for (let i = 0; i < 100 && !lines.some((l) => l.msg === 'request aborted by the client'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const logged = lines.filter((l) => (l.req as { url?: string } | undefined)?.url === '/fhir/Patient');
    expect(logged.map((l) => [(l.res as { statusCode?: number }).statusCode, l.msg, l.level])).toEqual([
      [499, 'request aborted by the client', 30],
    ]);
    expect(lines.some((l) => l.msg === 'unexpected error')).toBe(false);
  });

  it('a URL over the header size limit: 431 with an OperationOutcome (not a bare status line)', async () => {
    const { port } = http.address() as { port: number };
    const response = await fetch(`http://127.0.0.1:${port}/fhir/Patient?name=${'a'.repeat(20_000)}`);
    expect([
      response.status,
      response.headers.get('content-type'),
      ((await response.json()) as OperationOutcome).issue[0].code,
    ]).toEqual([431, 'application/fhir+json; charset=utf-8', 'too-costly']);
  });
});

describe('error texts do not echo stored content', () => {
  it('a failed JSON Patch test: 422 naming the element, without the stored resource', async () => {
    const response = await refused(() =>
      patch(
        `/fhir/Patient/${stored.id}`,
        JSON.stringify([{ op: 'test', path: '/name/0/family', value: 'someone else' }]),
        'application/json-patch+json',
      ),
    );
    expectOutcome(response, 422, { expression: 'Patient.name[0].family' });
    expect(JSON.stringify(response.body)).not.toContain(SECRET);
  });

  it('a JSON Patch path that does not exist: 422 naming it, without the stored resource', async () => {
    const response = await refused(() =>
      patch(
        `/fhir/Patient/${stored.id}`,
        JSON.stringify([{ op: 'remove', path: '/name/5' }]),
        'application/json-patch+json',
      ),
    );
    expectOutcome(response, 422, { expression: 'Patient.name[5]' });
    expect(JSON.stringify(response.body)).not.toContain(SECRET);
  });
});

describe('limits answer before the work starts', () => {
  it('a Patient with 1,000,000 given names: 413 at the array', async () => {
    const body = JSON.stringify({ resourceType: 'Patient', name: [{ given: Array(1_000_000).fill('g') }] });
    expectOutcome(await refused(() => post('/fhir/Patient', body)), 413, {
      code: 'too-costly',
      expression: 'Patient.name[0].given',
    });
  });

  it('a Patient with 30,000 identifiers: 413 at the array', async () => {
    const identifier = Array.from({ length: 30_000 }, (_, i) => ({ system: 'urn:x', value: `v${i}` }));
    expectOutcome(
      await refused(() => post('/fhir/Patient', JSON.stringify({ resourceType: 'Patient', identifier }))),
      413,
      {
        expression: 'Patient.identifier',
      },
    );
  });

  it('a Patient whose arrays are all under the limit but whose search values are not: 413', async () => {
    // 2,600 identifiers and 2,600 phone numbers: 7,800 index values (identifier, telecom, phone).
    const identifier = Array.from({ length: 2_600 }, (_, i) => ({ system: 'urn:x', value: `v${i}` }));
    const telecom = Array.from({ length: 2_600 }, (_, i) => ({ system: 'phone', value: `555-${i}` }));
    const body = JSON.stringify({ resourceType: 'Patient', identifier, telecom });
    const response = await refused(() => post('/fhir/Patient', body));
    expectOutcome(response, 413, { code: 'too-costly' });
    expect(response.body.issue[0].details.text).toMatch(/MAX_INDEX_VALUES/);
  });

  it('a string over MAX_STRING_LENGTH: 413 at the element', async () => {
    const body = JSON.stringify({ resourceType: 'Patient', name: [{ text: 'x'.repeat(1_100_000) }] });
    expectOutcome(await refused(() => post('/fhir/Patient', body)), 413, { expression: 'Patient.name[0].text' });
  });

  it('a 9 MB search value: 413 before the form is decoded', async () => {
    const response = await post('/fhir/Patient/_search', form([['name', 'a'.repeat(9 * 1024 * 1024)]]), FORM);
    expectOutcome(response, 413, { code: 'too-costly' });
  });

  it('a search value over MAX_SEARCH_VALUE_LENGTH: 400 too-costly at the parameter', async () => {
    const response = await request(server.app)
      .get('/fhir/Patient')
      .query({ name: 'a'.repeat(5000) });
    expectOutcome(response, 400, { code: 'too-costly', expression: 'name' });
  });

  it('3,000 chained parameters: 400 too-costly', async () => {
    const pairs = Array.from({ length: 3000 }, (): [string, string] => ['subject:Patient.name', 'x']);
    expectOutcome(await post('/fhir/Observation/_search', form(pairs), FORM), 400, { code: 'too-costly' });
  });

  it('more chain links than MAX_SEARCH_CHAINS: 400 at the parameter that crosses the limit', async () => {
    const pairs = Array.from({ length: 11 }, (_, i): [string, string] => [`subject:Patient.name`, `x${i}`]);
    const response = await post('/fhir/Observation/_search', form(pairs), FORM);
    expectOutcome(response, 400, { code: 'too-costly', expression: 'subject:Patient.name' });
  });

  it('a 5,000-entry _include list, and one over MAX_SEARCH_INCLUDES: 400 too-costly', async () => {
    const includes = (n: number) =>
      Array.from({ length: n }, (): [string, string] => ['_include', 'Observation:subject']);
    expectOutcome(await post('/fhir/Observation/_search', form(includes(5000)), FORM), 400, { code: 'too-costly' });
    expectOutcome(await post('/fhir/Observation/_search', form(includes(21)), FORM), 400, {
      code: 'too-costly',
      expression: '_include',
    });
  });

  it('a long text is stored, indexed by its first 256 characters, and found by them', async () => {
    const family = `Rivera${'x'.repeat(10_000)}`;
    const created = await createResource<Patient>(server.app, { resourceType: 'Patient', name: [{ family }] });
    const doc = await server.running.connection.db.collection('Patient').findOne({ _id: created.id as never });
    const indexed = (doc?.sp as Record<string, { n: string; e: string }>).family;
    expect([indexed.n.length, indexed.e.length]).toEqual([256, 256]);
    const found = await request(server.app)
      .get('/fhir/Patient')
      .query({ 'family:exact': family.slice(0, 300) });
    expect(found.body.entry.map((e: { resource: Patient }) => e.resource.id)).toEqual([created.id]);
  });
});

describe('request data cannot reach prototypes', () => {
  it('antlr4 (loaded by fhirpath) no longer leaves its hash seed on String.prototype', () => {
    expect([(String.prototype as { seed?: unknown }).seed, evaluate(stored, 'Patient.gender.seed', {}, r4)]).toEqual([
      undefined,
      [],
    ]);
  });

  it('a JSON key __proto__: 400 at it', async () => {
    const response = await refused(() =>
      post('/fhir/Patient', '{"resourceType":"Patient","__proto__":{"gender":"male"}}'),
    );
    expectOutcome(response, 400, { expression: 'Patient.__proto__' });
  });

  it('JSON keys constructor and prototype: 400 at them, also in a Bundle entry', async () => {
    const body = bundle([
      { resource: { resourceType: 'Patient', constructor: {} }, request: { method: 'POST', url: 'Patient' } },
    ]);
    expectOutcome(await refused(() => post('/fhir', body)), 400, {
      expression: 'Bundle.entry[0].resource.constructor',
    });
  });

  it('a JSON Patch that reads a prototype member of a string: 422, nothing read from it', async () => {
    const ops = [{ op: 'copy', from: '/gender/length', path: '/birthDate' }];
    const response = await refused(() =>
      patch(`/fhir/Patient/${stored.id}`, JSON.stringify(ops), 'application/json-patch+json'),
    );
    expectOutcome(response, 422, { expression: 'Patient.gender.length' });
  });

  it('a FHIRPath Patch path into String.prototype (Patient.gender.seed) matches nothing: 422', async () => {
    const body = JSON.stringify({
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'replace' },
            { name: 'path', valueString: 'Patient.gender.seed' },
            { name: 'value', valueCode: 'male' },
          ],
        },
      ],
    });
    const response = await refused(() => patch(`/fhir/Patient/${stored.id}`, body, FHIR_JSON));
    expectOutcome(response, 422, { expression: 'Parameters.parameter[0]' });
    expect((response.body as OperationOutcome).issue[0].details?.text).toMatch(/matches nothing|No .* found|not/i);
  });
});
