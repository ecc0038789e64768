import type { Binary, Bundle, BundleEntry, OperationOutcome } from '@medplum/fhirtypes';
import { bodyLimits, parseBoundedJson } from '../../fhir/json-limits';
import { badRequest, FhirError, issue, outcome, tooLarge, unsupportedMediaType } from '../../fhir/outcome';
import type { FhirMethod, FhirRequest, FhirResponse, UnitOfWork } from '../../fhir/request';
import type { CurrentDocument } from '../../store/documents';
import { ClaimTakenError, StagedWrite, VersionConflictError } from '../../store/journal';
import type { ServerContext } from '../context';
import { dispatch } from '../router';
import { requireEnvelope } from '../envelope';
import { requireResourceBody } from '../resource-body';
import { TimeSlice } from '../time-slice';
import { batchWaves, runLimited } from '../batch-plan';
import { JSON_PATCH } from './patch';
import { prepareTransaction } from './transaction-prepare';
import { entryError } from './entry-error';
import { CLAIM_ATTEMPTS, settleClaim } from '../conditional';
import { commitDocumentsOf, companionsOf } from '../write';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
};

const ENTRY_METHODS = new Set<FhirMethod>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** The spec's processing order for a transaction (RESTful API, "Transaction Processing Rules"). */
const TRANSACTION_ORDER: Record<FhirMethod, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trim();
}

/**
 * The body and Content-Type of an entry. A Bundle can only carry resources, so a JSON Patch travels as
 * a Binary with contentType application/json-patch+json and the patch base64-encoded in `data`
 * (RESTful API, "Patch" in transactions); it is unpacked here so the patch handler sees what a
 * PATCH over HTTP would send.
 */
function entryBody(context: ServerContext, entry: BundleEntry, index: number): { body: unknown; contentType: string } {
  const resource = entry.resource;
  if (entry.request?.method !== 'PATCH' || resource?.resourceType !== 'Binary') {
    return { body: resource, contentType: 'application/fhir+json' };
  }
  const binary = resource as Binary;
  if (binary.contentType !== JSON_PATCH) {
    throw unsupportedMediaType(
      `Bundle.entry[${index}]: a PATCH entry's Binary must have contentType ${JSON_PATCH}, not ${typeof binary.contentType === 'string' ? binary.contentType : 'none'}`,
    );
  }
  const where = `Bundle.entry[${index}].resource.data`;
  if (typeof binary.data !== 'string') {
    throw badRequest(`Bundle.entry[${index}]: the Binary's data must be a base64-encoded JSON Patch`, where);
  }
  // The patch is parsed as a body would be: within the same depth and size limits.
  const body = parseBoundedJson(Buffer.from(binary.data, 'base64'), bodyLimits(context.config), where);
  return { body, contentType: JSON_PATCH };
}

/** The path and query of an entry's request.url, as the router and handlers take them. */
function entryTarget(url: string, index: number): { path: string; query: [string, string][] } {
  try {
    const parsed = new URL(url.replace(/^\/+/, ''), 'http://entry.invalid/');
    const path = decodeURI(parsed.pathname.replace(/^\/+/, '').replace(/\/+$/, ''));
    // The router decodes each segment again: a bad escape must fail here, naming the entry.
    for (const segment of path.split('/')) decodeURIComponent(segment);
    return { path, query: [...parsed.searchParams.entries()] };
  } catch {
    throw badRequest(
      `Bundle.entry[${index}].request.url is not a valid relative URL`,
      `Bundle.entry[${index}].request.url`,
    );
  }
}

/** Turns an entry's request into the same transport-free request a single HTTP call would make. */
function entryRequest(context: ServerContext, parent: FhirRequest, entry: BundleEntry, index: number): FhirRequest {
  const method = entry.request?.method as FhirMethod;
  const { body, contentType } = entryBody(context, entry, index);
  const { path, query } = entryTarget(entry.request?.url ?? '', index);
  return {
    method,
    path,
    query,
    headers: {
      ifMatch: entry.request?.ifMatch,
      ifNoneMatch: entry.request?.ifNoneMatch,
      ifModifiedSince: entry.request?.ifModifiedSince,
      ifNoneExist: entry.request?.ifNoneExist,
      prefer: parent.headers.prefer,
      contentType,
    },
    body,
    baseUrl: parent.baseUrl,
    requestId: `${parent.requestId}#${index}`,
    // One decision for the whole Bundle; each entry is authorized on its own against it.
    requester: parent.requester,
    access: parent.access,
    remoteAddress: parent.remoteAddress,
    bundle: { request: parent, index },
  };
}

function responseEntry(response: FhirResponse): BundleEntry {
  const body = response.body;
  const isOutcome = body?.resourceType === 'OperationOutcome';
  return {
    ...(body && !isOutcome ? { resource: body } : {}),
    response: {
      status: statusLine(response.status),
      ...(response.headers.location ? { location: response.headers.location } : {}),
      ...(response.headers.etag ? { etag: response.headers.etag } : {}),
      ...(response.headers.lastModified ? { lastModified: new Date(response.headers.lastModified).toISOString() } : {}),
      ...(isOutcome ? { outcome: body as OperationOutcome } : response.outcome ? { outcome: response.outcome } : {}),
    },
  };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The request element's headers, each a string when present (conditionOf and the handlers read them so). */
const ENTRY_HEADERS = ['ifNoneMatch', 'ifModifiedSince', 'ifMatch', 'ifNoneExist'] as const;

/** What the processing needs of each entry, checked before any entry runs. */
function checkEntryShape(entry: unknown, index: number): void {
  const at = `Bundle.entry[${index}]`;
  if (!isObject(entry)) throw badRequest(`${at} must be an entry (a JSON object)`, at);
  const request = entry.request;
  const method = isObject(request) ? request.method : undefined;
  if (!isObject(request) || typeof method !== 'string' || !ENTRY_METHODS.has(method as FhirMethod)) {
    throw badRequest(`${at} needs request.method (GET, HEAD, POST, PUT, PATCH or DELETE)`, [`${at}.request.method`]);
  }
  if (typeof request.url !== 'string' || !request.url) {
    throw badRequest(`${at} needs request.url (a string)`, `${at}.request.url`);
  }
  for (const name of ENTRY_HEADERS) {
    if (request[name] !== undefined && typeof request[name] !== 'string') {
      throw badRequest(`${at}.request.${name} must be a string`, `${at}.request.${name}`);
    }
  }
  if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && !entry.resource) {
    throw badRequest(`${at} is a ${method} without a resource`, `${at}.resource`);
  }
  if (entry.resource !== undefined && !isObject(entry.resource)) {
    throw badRequest(`${at}.resource must be a resource (a JSON object)`, `${at}.resource`);
  }
}

/** POST [base] with a batch or transaction Bundle (RESTful API, "batch/transaction"). */
export async function processBundle(request: FhirRequest, context: ServerContext): Promise<FhirResponse> {
  const bundle = requireResourceBody(request.body, 'Bundle') as Bundle;
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw badRequest(
      `POST to the base accepts batch and transaction Bundles, not "${typeof bundle.type === 'string' ? bundle.type : ''}"`,
      'Bundle.type',
    );
  }
  const listed: unknown = bundle.entry;
  if (listed !== undefined && !Array.isArray(listed)) {
    throw badRequest('Bundle.entry must be an array of entries', 'Bundle.entry');
  }
  const entries = (listed ?? []) as BundleEntry[];
  if (entries.length > context.config.maxBundleEntries) {
    throw tooLarge(
      `The Bundle has ${entries.length} entries; this server accepts at most ${context.config.maxBundleEntries}`,
    );
  }
  entries.forEach((entry, index) => checkEntryShape(entry, index));
  // Then the Bundle is validated as any resource would be (its entries' resources when they are written).
  requireEnvelope(context, bundle, 'Bundle');
  if (bundle.type === 'batch') return processBatch(request, context, entries);
  // A conditional create lost a race to a concurrent writer: nothing was stored, so the whole
  // transaction runs again and now finds the winner's resource (an EHR re-send converges the same way).
  for (let attempt = 1; ; attempt++) {
    try {
      return await processTransaction(request, context, entries);
    } catch (error) {
      if (error instanceof TransactionVersionRace) {
        if (attempt >= CLAIM_ATTEMPTS) throw error.answer;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
        continue;
      }
      if (!(error instanceof ClaimTakenError)) throw error;
      if (attempt >= CLAIM_ATTEMPTS) {
        throw new FhirError(409, outcome([issue('error', 'conflict', `${error.message}; retry the transaction`)]));
      }
      await settleClaim(context, error.claim, request.baseUrl);
    }
  }
}

/** A transaction lost a version race on an entry without If-Match: it runs again from the start. */
class TransactionVersionRace extends Error {
  constructor(readonly answer: FhirError) {
    super(answer.message);
  }
}

/**
 * Each entry on its own, through the same handlers as single requests; failures stay in their entry.
 * Entries that do not depend on each other run side by side, up to BATCH_CONCURRENCY at a time
 * (batchWaves says which), so that a sync batch's commits overlap instead of queueing.
 */
async function processBatch(
  request: FhirRequest,
  context: ServerContext,
  entries: BundleEntry[],
): Promise<FhirResponse> {
  const results: BundleEntry[] = new Array(entries.length);
  const slice = new TimeSlice();
  const run = async (index: number) => {
    await slice.pause();
    try {
      results[index] = responseEntry(await dispatch(entryRequest(context, request, entries[index], index), context));
    } catch (error) {
      if (!(error instanceof FhirError)) throw error;
      results[index] = { response: { status: statusLine(error.status), outcome: error.outcome } };
    }
  };
  for (const wave of batchWaves(entries)) await runLimited(wave, context.config.batchConcurrency, run);
  const body: Bundle = { resourceType: 'Bundle', type: 'batch-response', entry: results };
  return { status: 200, headers: {}, body };
}

/** Collects the staged writes of a transaction; conflicts with earlier entries are caught here. */
class TransactionWork implements UnitOfWork {
  readonly staged: StagedWrite[] = [];
  readonly entryOf: number[] = [];
  private readonly ts = new Date();
  private readonly touched = new Set<string>();
  current = -1;

  constructor(private readonly context: ServerContext) {}

  stage(writes: Parameters<UnitOfWork['stage']>[0], check?: Parameters<UnitOfWork['stage']>[1]): CurrentDocument[] {
    const staged = this.context.store.stage(writes, this.ts);
    if (check) for (const write of staged) check(write);
    for (const write of staged) {
      const key = `${write.type}/${write.id}`;
      if (this.touched.has(key)) {
        throw badRequest(
          `${key} is written by more than one entry of the transaction`,
          `Bundle.entry[${this.current}]`,
        );
      }
      this.touched.add(key);
      this.staged.push(write);
      this.entryOf.push(this.current);
    }
    return staged.map((s) => s.next);
  }
}

/**
 * A condition resolved to a resource that a DELETE entry of the same transaction removes. The spec
 * runs DELETEs first, so the condition would then match nothing; this server resolves conditions
 * before any entry runs and refuses the combination instead of answering with a deleted resource.
 */
function refuseDeletedConditionTargets(work: TransactionWork, resolved: Map<string, number>): void {
  work.staged.forEach((write, i) => {
    const key = `${write.type}/${write.id}`;
    const resolvedBy = resolved.get(key);
    if (write.method !== 'DELETE' || resolvedBy === undefined) return;
    throw entryError(
      resolvedBy,
      badRequest(
        `The condition of this entry matches ${key}, which Bundle.entry[${work.entryOf[i]}] deletes; ` +
          'send the deletion and the conditional entry in separate requests',
      ),
    );
  });
}

/**
 * All entries or none: writes are staged entry by entry through the ordinary handlers (which run the
 * interceptors: validation, authorization), then committed together by the journal. GET entries run
 * after the commit, so they see the transaction's result.
 */
async function processTransaction(
  request: FhirRequest,
  context: ServerContext,
  entries: BundleEntry[],
): Promise<FhirResponse> {
  const prepared = await prepareTransaction(request, context, entries);
  const order = entries
    .map((entry, index) => ({ entry: prepared.entries[index] ?? entry, index }))
    .sort(
      (a, b) =>
        TRANSACTION_ORDER[a.entry.request?.method as FhirMethod] -
          TRANSACTION_ORDER[b.entry.request?.method as FhirMethod] || a.index - b.index,
    );

  const work = new TransactionWork(context);
  const results: (BundleEntry | undefined)[] = new Array(entries.length);
  const reads: { entry: BundleEntry; index: number }[] = [];
  const slice = new TimeSlice();
  for (const { entry, index } of order) {
    await slice.pause();
    const method = entry.request?.method as FhirMethod;
    if (method === 'GET' || method === 'HEAD') {
      reads.push({ entry, index });
      continue;
    }
    const presetResult = prepared.results[index];
    if (presetResult) {
      results[index] = presetResult;
      continue;
    }
    work.current = index;
    try {
      const entryReq = {
        ...entryRequest(context, request, entry, index),
        unitOfWork: work,
        assignedId: prepared.assignedIds[index],
        claim: prepared.claims[index],
      };
      results[index] = responseEntry(await dispatch(entryReq, context));
    } catch (error) {
      if (error instanceof FhirError) throw entryError(index, error);
      throw error;
    }
  }

  refuseDeletedConditionTargets(work, prepared.resolvedByCondition);

  // The Bundle's audit record is committed with it (a transaction that stages nothing commits nothing).
  const companions = work.staged.length ? companionsOf(context, request, work.staged) : [];
  let committed: CurrentDocument[] = [];
  try {
    const sides = work.staged.length ? commitDocumentsOf(context, request, work.staged) : [];
    committed = (await context.store.commitStaged([...work.staged, ...companions], undefined, sides)).slice(
      0,
      work.staged.length,
    );
  } catch (error) {
    // A lost claim race is retried from the start by processTransaction's caller.
    if (error instanceof ClaimTakenError) throw error;
    if (error instanceof VersionConflictError) {
      const index = work.entryOf[error.index] ?? error.index;
      const conflict = entryError(index, new FhirError(409, outcome([issue('error', 'conflict', error.message)])));
      // An entry that named its version (If-Match) keeps the conflict; others run again on the new version.
      const expected = entries[index]?.request?.ifMatch !== undefined;
      throw expected ? conflict : new TransactionVersionRace(conflict);
    }
    throw error;
  }
  const documents = committed.map((doc, i) => ({ type: work.staged[i].type, doc }));
  request.written?.push(...documents);
  for (const interceptor of context.interceptors) await interceptor.afterCommit?.(documents);

  for (const { entry, index } of reads) {
    await slice.pause();
    try {
      results[index] = responseEntry(await dispatch(entryRequest(context, request, entry, index), context));
    } catch (error) {
      if (!(error instanceof FhirError)) throw error;
      results[index] = { response: { status: statusLine(error.status), outcome: error.outcome } };
    }
  }
  const body: Bundle = { resourceType: 'Bundle', type: 'transaction-response', entry: results as BundleEntry[] };
  return { status: 200, headers: {}, body };
}
