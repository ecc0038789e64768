// Generated hostile requests (test/support/hostile.ts) through the real Express app, one at a time so
// that "a refused request stored nothing" can be checked exactly. bench/hostile.ts sends the same
// requests concurrently to a running server and measures latencies.
import type { OperationOutcome, Patient } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { createServer, type Server } from 'node:http';
import request from 'supertest';
import { answerClientError } from '../../src/http/client-error';
import { hostileRequest, render, type HostileSpec } from '../support/hostile';
import { createResource, FHIR_JSON, ISSUE_TYPES, startTestServer, TestServer } from '../support/server';
import { resourceTypes } from '../../src/fhir/definitions';

/** Bounded for CI; HOSTILE_RUNS=10000 (and HOSTILE_SEED to replay a failure) for a longer probe. */
const RUNS = Number(process.env.HOSTILE_RUNS ?? 2000);
const SEED = process.env.HOSTILE_SEED === undefined ? undefined : Number(process.env.HOSTILE_SEED);
const SECRET = 'Hostile-Secret-Mbeki-4471';

let server: TestServer;
/** The app behind an HTTP server set up as src/server.ts sets it up: what Node refuses before Express
 *  (a header block over its size limit: 431) is answered with an OperationOutcome too. */
let http: Server;
let ids: string[];

beforeAll(async () => {
  server = await startTestServer(__filename);
  http = createServer(server.app);
  http.on('clientError', answerClientError);
  const patients = await Promise.all(
    ['hostile-a', 'hostile-b'].map((mrn) =>
      createResource<Patient>(server.app, {
        resourceType: 'Patient',
        identifier: [{ system: 'urn:hostile', value: mrn }],
        name: [{ family: SECRET, given: ['Thandi'] }],
        gender: 'female',
      }),
    ),
  );
  ids = patients.map((p) => p.id as string);
});
afterAll(async () => {
  http.close();
  await server.close();
});

// Versions of the record; the audit trail's own events (stored for every request, refused or not) aside.
// An `$in` of the types, not `$ne`, so that the engine counts in SQL rather than decoding every version.
const RECORD_TYPES = resourceTypes().filter((type) => type !== 'AuditEvent');
const versions = () =>
  server.running.connection.db.collection('_history').countDocuments({ type: { $in: RECORD_TYPES } });

function send(spec: HostileSpec): Promise<request.Response> {
  const { method, url, headers, body } = render(spec);
  const agent = request(http);
  let call =
    method === 'OPTIONS'
      ? agent.options(url)
      : agent[method === 'HEAD' ? 'head' : (method.toLowerCase() as 'get')](url);
  for (const [name, value] of Object.entries(headers)) call = call.set(name, value);
  // The bytes go as rendered: superagent would re-serialise a Buffer sent as JSON.
  if (body !== undefined) call = call.serialize((bytes: Buffer) => bytes as unknown as string).send(body);
  return call;
}

/** What must hold of every answer, whatever was asked. */
function problemsOf(spec: HostileSpec, response: request.Response, stored: boolean): string[] {
  const problems: string[] = [];
  if (response.status >= 500) problems.push(`answered ${response.status}`);
  if (response.status < 400) return problems;
  if (stored) problems.push(`a ${response.status} answer stored a version`);
  if (spec.method === 'HEAD' || (response.status === 404 && !response.text)) return problems;
  if (!String(response.headers['content-type']).startsWith(FHIR_JSON)) {
    problems.push(`a ${response.status} answer is ${response.headers['content-type']}, not FHIR JSON`);
    return problems;
  }
  const outcome = response.body as OperationOutcome;
  if (outcome.resourceType !== 'OperationOutcome')
    problems.push(`a ${response.status} answer is not an OperationOutcome`);
  const errors = (outcome.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (!errors.length) problems.push('no error issue');
  if (errors.some((i) => !ISSUE_TYPES.has(i.code) || !i.details?.text))
    problems.push('an issue without a code or text');
  if (/at .*\.(ts|js):\d+/.test(response.text)) problems.push('a stack trace');
  // Validating a patched resource may quote a value the patch moved: the patcher can read it anyway.
  const patched = spec.method === 'PATCH' && response.status === 422;
  if (!patched && response.text.includes(SECRET)) problems.push('stored content in an error');
  return problems;
}

describe('generated hostile requests', () => {
  it(`never answer 500, always answer refusals with an OperationOutcome, and store nothing when refused (${RUNS} requests)`, async () => {
    const objectKeys = Object.getOwnPropertyNames(Object.prototype);
    const stringKeys = Object.getOwnPropertyNames(String.prototype);
    const kinds = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(hostileRequest(ids), async (spec) => {
        kinds.set(spec.kind, (kinds.get(spec.kind) ?? 0) + 1);
        const before = await versions();
        const response = await send(spec);
        const stored = (await versions()) !== before;
        expect({
          request: `${spec.method} ${render(spec).url.slice(0, 200)}`,
          problems: problemsOf(spec, response, stored),
        }).toEqual({
          request: `${spec.method} ${render(spec).url.slice(0, 200)}`,
          problems: [],
        });
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    // Every family was exercised, and no request data reached a prototype.
    expect([...kinds.keys()].filter((k) => !k.startsWith('giant') && !k.startsWith('mutant')).sort()).toEqual(
      [
        'bundle',
        'create',
        'fhirpath-patch',
        'json-patch',
        'path',
        'raw',
        'review',
        'search',
        'search-post',
        'update',
        'validate',
      ].sort(),
    );
    expect([Object.getOwnPropertyNames(Object.prototype), Object.getOwnPropertyNames(String.prototype)]).toEqual([
      objectKeys,
      stringKeys,
    ]);
  }, 600_000);
});
