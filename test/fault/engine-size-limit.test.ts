// The engine's document size limit: a body under MAX_BODY_BYTES can become a document over the
// engine's 16 MB limit (seventeen 1 MB given names, each within MAX_STRING_LENGTH; their search values
// keep 256 characters each, so it is the resource itself that does not fit). Such a write is refused
// with a clear 413 and an OperationOutcome before anything is committed, whether it comes alone (POST,
// PUT) or inside a transaction.
import type { Bundle, OperationOutcome, Patient } from '@medplum/fhirtypes';
import { bundleOf, describeAnswer, fhir, FhirAnswer } from './fhir-client';
import { FaultCluster } from './harness';
import { FAULT_TAG_SYSTEM, tagQuery } from './medication-set';

const MAX_BODY_BYTES = 20 * 1024 * 1024;
const RUN = Date.now().toString(36);
const IDENTIFIER_SYSTEM = 'https://meds-fhir.test/size-limit';

let cluster: FaultCluster;

function hugePatient(mrn: string, tag: string): Patient {
  const given = Array.from({ length: 17 }, (_, i) => String.fromCharCode(97 + i).repeat(1024 * 1024));
  return {
    resourceType: 'Patient',
    meta: { tag: [{ system: FAULT_TAG_SYSTEM, code: tag }] },
    identifier: [{ system: IDENTIFIER_SYSTEM, value: mrn }],
    name: [{ family: 'Huge', given }],
  };
}

/** What is wrong with an answer that should be a 413 OperationOutcome with an error issue. */
function refusalProblems(answer: FhirAnswer): string[] {
  const outcome = answer.body?.resourceType === 'OperationOutcome' ? (answer.body as OperationOutcome) : undefined;
  const problems: string[] = [];
  if (answer.status !== 413) problems.push(`answered ${describeAnswer(answer)}, want 413`);
  if (!outcome) problems.push(`body is ${answer.body?.resourceType ?? 'empty'}, want an OperationOutcome`);
  else if (!outcome.issue.some((i) => i.severity === 'error' && (i.details?.text ?? i.diagnostics))) {
    problems.push('the OperationOutcome has no error issue that says why');
  }
  return problems;
}

async function countOf(query: string): Promise<number | undefined> {
  return bundleOf(await fhir(cluster.server.base, 'GET', `${query}&_summary=count`)).total;
}

describe('a write over the engine document size limit', () => {
  beforeAll(async () => {
    cluster = await FaultCluster.start('fault_size', [
      { serverId: 'size-1', env: { MAX_BODY_BYTES: String(MAX_BODY_BYTES) } },
    ]);
  }, 120_000);

  afterAll(async () => {
    console.log(cluster?.report());
    await cluster?.stop();
  }, 60_000);

  it('is refused with 413 and an OperationOutcome, and nothing is stored (POST, PUT, transaction)', async () => {
    const base = cluster.server.base;
    const tag = `size-${RUN}`;
    const since = new Date(Date.now() - 2_000).toISOString();
    const posted = hugePatient(`post-${RUN}`, tag);
    // The harness check: the body itself is under the limit the server was started with.
    expect(Buffer.byteLength(JSON.stringify(posted))).toBeLessThan(MAX_BODY_BYTES);

    const post = await fhir(base, 'POST', 'Patient', { body: posted, timeoutMs: 120_000 });
    const putId = `size-put-${RUN}`;
    const put = await fhir(base, 'PUT', `Patient/${putId}`, {
      body: { ...hugePatient(`put-${RUN}`, tag), id: putId },
      timeoutMs: 120_000,
    });
    const small: Patient = { resourceType: 'Patient', meta: { tag: [{ system: FAULT_TAG_SYSTEM, code: tag }] } };
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        {
          fullUrl: 'urn:uuid:3b0c6d9e-6c1b-4c38-9d59-2f7a7d0c1a01',
          resource: small,
          request: { method: 'POST', url: 'Patient' },
        },
        {
          fullUrl: 'urn:uuid:3b0c6d9e-6c1b-4c38-9d59-2f7a7d0c1a02',
          resource: hugePatient(`tx-${RUN}`, tag),
          request: { method: 'POST', url: 'Patient' },
        },
      ],
    };
    const transaction = await fhir(base, 'POST', '', { body: bundle, timeoutMs: 120_000 });

    const history = bundleOf(
      await fhir(base, 'GET', `Patient/_history?_since=${encodeURIComponent(since)}&_count=100`),
    );
    expect({
      post: refusalProblems(post),
      put: refusalProblems(put),
      transaction: refusalProblems(transaction),
      storedWithTag: await countOf(`Patient?${tagQuery(tag)}`),
      storedByIdentifier: await countOf(
        `Patient?identifier=${['post', 'put', 'tx'].map((k) => encodeURIComponent(`${IDENTIFIER_SYSTEM}|${k}-${RUN}`)).join(',')}`,
      ),
      putRead: (await fhir(base, 'GET', `Patient/${putId}`)).status,
      newVersions: (history.entry ?? []).length,
    }).toEqual({
      post: [],
      put: [],
      transaction: [],
      storedWithTag: 0,
      storedByIdentifier: 0,
      putRead: 404,
      newVersions: 0,
    });
    // The server is well afterwards.
    expect((await fhir(base, 'POST', 'Patient', { body: { resourceType: 'Patient' } })).status).toBe(201);
  }, 300_000);
});
