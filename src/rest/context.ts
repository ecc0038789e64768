import type {
  CapabilityStatementRestResourceSearchParam,
  Extension,
  OperationOutcomeIssue,
  Resource,
} from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import type { AccessControl } from '../auth/access-control';
import type { Permission } from '../auth/scopes';
import type { ServerConfig } from '../config';
import type { MongoFilter } from '../search/compile/element';
import type { FhirError } from '../fhir/outcome';
import type { PageTokens } from '../fhir/page-token';
import type { FhirRequest, FhirResponse } from '../fhir/request';
import type { CurrentDocument } from '../store/documents';
import type { Reader } from '../store/read-view';
import type { SideDocument, StagedWrite } from '../store/journal';
import type { PlannedWrite, ResourceStore } from '../store/resource-store';

/** What a request asks of the server, once routed: what authorization and audit reason about. */
export interface Interaction {
  kind:
    | 'read'
    | 'vread'
    | 'update'
    | 'patch'
    | 'delete'
    | 'create'
    | 'search-type'
    | 'search-system'
    | 'history-instance'
    | 'history-type'
    | 'history-system'
    | 'capabilities'
    | 'batch'
    | 'transaction'
    | 'operation';
  resourceType?: string;
  id?: string;
  operation?: string;
  /** Compartment searches (`Patient/123/MedicationRequest`): the compartment searched. */
  compartment?: { type: string; id: string };
}

/**
 * A cross-cutting concern around the plain request pipeline (HAPI's interceptors): authorization,
 * validation, audit and consent plug in here, never as `if`s inside the handlers.
 */
export interface Interceptor {
  name: string;
  /** Before authorization: throw a FhirError to refuse what no requester may do (405 on the audit trail). */
  beforeAuthorization?(request: FhirRequest, interaction: Interaction): Promise<void> | void;
  /** Before the handler runs; throw a FhirError to refuse the request. */
  beforeInteraction?(request: FhirRequest, interaction: Interaction): Promise<void> | void;
  /** Before a resource version is stored; an error-severity issue rejects the write with 422. */
  checkWrite?(
    resource: Resource,
    context: { request: FhirRequest; interaction: Interaction },
  ): Promise<OperationOutcomeIssue[]> | OperationOutcomeIssue[];
  /**
   * Resources to store in the same commit as a request's writes, all or nothing with them (the
   * request's audit record). Asked once per commit: for a transaction, once for the whole Bundle.
   */
  companionWrites?(request: FhirRequest, staged: StagedWrite[]): PlannedWrite[];
  /**
   * Internal documents (a work queue's entries, a subscription outbox's events) to write in the same
   * commit as `staged`: they exist if and only if the commit happened, even across a crash.
   */
  commitDocuments?(request: FhirRequest, staged: StagedWrite[]): SideDocument[];
  /** After versions are durably stored (caches of conformance resources, reindexing, subscriptions). */
  afterCommit?(documents: { type: string; doc: CurrentDocument }[]): Promise<void> | void;
  /** After the handler, whether it succeeded or failed. */
  afterInteraction?(
    request: FhirRequest,
    interaction: Interaction,
    result: { response?: FhirResponse; error?: FhirError },
  ): Promise<void> | void;
  /** A request refused at the HTTP edge (401: no token, or one that failed verification); it has no body. */
  afterAuthenticationFailure?(request: FhirRequest, error: FhirError): Promise<void> | void;
}

export type OperationLevel = 'system' | 'type' | 'instance';

/** A FHIR operation ($validate, $medication-review, ...), registered by the module that implements it. */
export interface OperationHandler {
  /** Without the $. */
  name: string;
  levels: OperationLevel[];
  /** Types it applies to at type and instance level; undefined means every type. */
  resourceTypes?: string[];
  /** True when it changes nothing, so GET is allowed. */
  affectsState: boolean;
  /** Canonical URL of its OperationDefinition, for the CapabilityStatement. */
  definition: string;
  /** A definition per type where the level changes it (Bulk Data's patient- and group-export). */
  definitionFor?(resourceType: string | undefined): string;
  /**
   * True when it reads through views of its own that span many commits (a population measure reads
   * for minutes, as an export does): its request's reads are then not held to one commit boundary,
   * which no read longer than the journal's retention could keep.
   */
  spansCommits?: boolean;
  /** True for the status URL of an asynchronous request, where DELETE cancels it. */
  acceptsDelete?: boolean;
  /** Left out of the CapabilityStatement: a URL clients follow from an answer, not one they invoke. */
  unlisted?: boolean;
  /**
   * `_format` values it answers in besides FHIR JSON: it reads `_format` and Accept itself, so the
   * HTTP layer does not refuse them (406) before it runs.
   */
  responseFormats?: string[];
  /**
   * What a token's scopes must grant to invoke it: one of `permissions` on `type` (default: the type
   * it is invoked on; at system level, on any type). What it then reads is filtered like any read.
   */
  requires: { permissions: Permission[]; type?: string };
  handle(
    request: FhirRequest,
    context: ServerContext,
    target: { level: OperationLevel; resourceType?: string; id?: string },
  ): Promise<FhirResponse>;
}

/** Lets modules that are not part of the core (search, validation) describe themselves in /metadata. */
export interface CapabilityContributor {
  searchParams?(resourceType: string): CapabilityStatementRestResourceSearchParam[];
  supportedProfiles?(resourceType: string): string[];
  searchInteractions?: boolean;
  /** Interactions a module refuses on a type for everyone (405), left out of the type's interactions. */
  refusesInteraction?(resourceType: string, interaction: string): boolean;
  /** Extensions of the type's rest.resource entry (the subscription topics on Subscription). */
  resourceExtensions?(resourceType: string): Extension[];
}

/** What a search runs over: one type, all types (system search), or one type within a compartment. */
export interface SearchTarget {
  resourceType?: string;
  compartment?: { type: string; id: string };
}

/** A search implementation, plugged in by src/modules/search.ts. */
export type SearchHandler = (
  request: FhirRequest,
  context: ServerContext,
  target: SearchTarget,
) => Promise<FhirResponse>;

export interface ServerContext {
  config: ServerConfig;
  store: ResourceStore;
  logger: Logger;
  interceptors: Interceptor[];
  operations: OperationHandler[];
  capabilities: CapabilityContributor[];
  /** Details modules add to GET /readyz (the findings queue's depth). */
  readiness: (() => Promise<Record<string, unknown>>)[];
  search?: SearchHandler;
  /**
   * Validates a Bundle or Parameters that a request carries as its input, without the resources inside
   * it (provided by the validation module; see requireEnvelope).
   */
  checkEnvelope?: (resource: Resource) => OperationOutcomeIssue[];
  /** Conditional interactions' matching (provided by the search module): at most `limit` live matches. */
  findMatches?: (
    type: string,
    query: [string, string][],
    limit: number,
    baseUrl: string,
    reader?: Reader,
  ) => Promise<CurrentDocument[]>;
  /** A search query compiled to its filter (provided by the search module), for query-restricted scopes. */
  compileQuery?: (type: string, query: [string, string][], baseUrl: string) => Promise<MongoFilter>;
  /** Who is asking and what they may see (src/auth). */
  access: AccessControl;
  pageTokens: PageTokens;
  /** True where MongoDB multi-document transactions exist (replica set, mongos). */
  supportsTransactions: boolean;
}
