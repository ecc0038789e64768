import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { AccessPolicy } from '../auth/access-policy';
import type { Requester } from '../auth/requester';
import type { CurrentDocument } from '../store/documents';
import type { ReadView } from '../store/read-view';
import type { StagedWrite } from '../store/journal';
import type { PlannedWrite } from '../store/resource-store';

/**
 * Collects the writes of a transaction Bundle's entries: a handler that finds one on its request stages
 * its writes there instead of committing, and the Bundle processor commits them all at once.
 */
export interface UnitOfWork {
  /** `check` refuses a staged version (authorization) before it joins the unit. */
  stage(writes: PlannedWrite[], check?: (write: StagedWrite) => void): CurrentDocument[];
}

export type FhirMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The headers that change what a FHIR interaction does (RESTful API, "Conditional" and "Versioning"). */
export interface FhirRequestHeaders {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifNoneExist?: string;
  prefer?: string;
  contentType?: string;
  /** Read only by operations that answer in formats of their own (OperationHandler.responseFormats). */
  accept?: string;
}

/**
 * A FHIR interaction with no trace of its transport, so that the same handlers serve HTTP requests
 * and the entries of a batch or transaction Bundle.
 */
export interface FhirRequest {
  method: FhirMethod;
  /** Path below the FHIR base, without leading slash: "Patient/123/_history/2". */
  path: string;
  /** Query parameters in order; a repeated name appears once per occurrence. */
  query: [string, string][];
  headers: FhirRequestHeaders;
  body?: unknown;
  /** Absolute FHIR base URL without trailing slash, for Location headers and Bundle links. */
  baseUrl: string;
  requestId: string;
  /** Set for the entries of a transaction Bundle. */
  unitOfWork?: UnitOfWork;
  /** The id a create must use: a transaction assigns ids up front so references can be rewritten. */
  assignedId?: string;
  /**
   * A conditional-create claim (`Type?query`) the write must take if it creates the resource: the
   * condition matched nothing when it was checked, and the claim makes racing creators lose.
   */
  claim?: string;
  /**
   * The reads of this request (set by the dispatcher): everything it shows a client is read through it,
   * so that no part of a transaction is seen without the rest.
   */
  reads?: ReadView;
  /** Who is asking (set at the HTTP edge from the bearer token; internal callers set it explicitly). */
  requester?: Requester;
  /** The requester's access decision, computed once per request and shared with its Bundle entries. */
  access?: AccessPolicy;
  /** The client's network address (the TCP peer), for the audit trail. */
  remoteAddress?: string;
  /**
   * When the request arrived (epoch ms), before it waited for its turn (src/http/admission.ts), or
   * else when the dispatcher took it: its time budget, and its entries', runs from here.
   */
  startedAt?: number;
  /**
   * Engine queries of this request (its entries' included) still running after its time budget ran
   * out: the engine is busy with them, so the request's turn is held until they end.
   */
  abandonedQueries?: Promise<unknown>[];
  /** Set for the entries of a batch or transaction: the Bundle request and the entry's index. */
  bundle?: { request: FhirRequest; index: number };
  /**
   * The versions this request wrote (committed, or staged into a transaction), for the audit. Set to
   * an array before the handler runs, so the copies a handler makes of its request share it.
   */
  written?: { type: string; doc: CurrentDocument }[];
}

export interface FhirResponseHeaders {
  etag?: string;
  lastModified?: string;
  location?: string;
  contentLocation?: string;
  /** Seconds a client should wait before asking again (async status, 429). */
  retryAfter?: number;
  /** How far an asynchronous request has come (Bulk Data's X-Progress). */
  progress?: string;
  expires?: string;
}

/**
 * An answer that is not one FHIR resource but a stream of text (a view's rows as CSV or NDJSON, an
 * export's manifest or files),
 * produced while it is sent so that it is never held whole in memory. The HTTP layer pulls the first
 * chunk before it sends the status, so an error found then is still an OperationOutcome; an error
 * after that can only cut the stream short.
 */
export interface ResponseStream {
  contentType: string;
  chunks: AsyncIterable<string>;
}

/** A text that is answered whole, as a stream of one chunk. */
export function textStream(contentType: string, text: string): ResponseStream {
  return {
    contentType,
    chunks: (async function* () {
      yield text;
    })(),
  };
}

export interface FhirResponse {
  status: number;
  body?: Resource;
  /** Sent instead of `body` when set (HTTP only: not a Bundle entry's response). */
  stream?: ResponseStream;
  headers: FhirResponseHeaders;
  /** What happened, for a Bundle entry's response.outcome (created, updated, unchanged, matched). */
  outcome?: OperationOutcome;
}

/** The value of a query parameter that may appear once; the last one wins for repeated controls. */
export function queryValue(request: Pick<FhirRequest, 'query'>, name: string): string | undefined {
  let value: string | undefined;
  for (const [key, v] of request.query) if (key === name) value = v;
  return value;
}
