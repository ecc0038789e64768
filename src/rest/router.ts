import type { Bundle } from '@medplum/fhirtypes';
import {
  FhirError,
  methodNotAllowed,
  notFound,
  serverError,
  serviceUnavailable,
  timedOut,
  VersionRaceError,
} from '../fhir/outcome';
import { CommitAbortedError } from '../store/journal';
import { NONE, ReadConflictError, TimeBudgetError, type Restriction } from '../store/read-view';
import type { AccessPolicy } from '../auth/access-policy';
import { policyOf } from '../auth/access-control';
import { authorizeInteraction } from '../auth/authorize';
import { isResourceType } from '../fhir/definitions';
import { NOTHING } from '../search/compile/element';
import type { FhirMethod, FhirRequest, FhirResponse } from '../fhir/request';
import type { Interaction, ServerContext } from './context';
import { processBundle } from './interactions/bundle';
import { capabilityStatement } from './interactions/capabilities';
import { create, read, remove, update, vread } from './interactions/crud';
import { history } from './interactions/history';
import { invokeOperation } from './interactions/operations';
import { patch } from './interactions/patch';
import { requireResourceType } from './resource-body';
import { searchRoute } from './interactions/search';
import { conditionalDelete, conditionalPatch, conditionalUpdate } from './interactions/conditional-crud';

type RouteParams = Record<string, string>;
type RouteHandler = (request: FhirRequest, context: ServerContext, params: RouteParams) => Promise<FhirResponse>;

export interface Route {
  method: FhirMethod;
  /** Segments: literals, ":type", ":id", ":vid", "$op" (an operation name after the $). */
  pattern: string;
  interaction: Interaction['kind'];
  handler: RouteHandler;
}

/**
 * The REST surface as one table that reads like the spec's list of interactions. Later issues add
 * rows (search, conditional interactions) and the CapabilityStatement,
 * built from this table, follows.
 */
export const routes: Route[] = [
  { method: 'POST', pattern: '', interaction: 'transaction', handler: (r, c) => processBundle(r, c) },
  { method: 'GET', pattern: '', interaction: 'search-system', handler: (r, c) => searchRoute(r, c, {}) },
  { method: 'POST', pattern: '_search', interaction: 'search-system', handler: (r, c) => searchRoute(r, c, {}) },
  { method: 'GET', pattern: 'metadata', interaction: 'capabilities', handler: (r, c) => capabilityStatement(r, c) },
  { method: 'GET', pattern: '_history', interaction: 'history-system', handler: (r, c) => history(r, c, {}) },
  { method: 'GET', pattern: '$op', interaction: 'operation', handler: (r, c, p) => invokeOperation(r, c, p) },
  { method: 'POST', pattern: '$op', interaction: 'operation', handler: (r, c, p) => invokeOperation(r, c, p) },
  // Cancelling an asynchronous request at its status URL (Bulk Data: DELETE [base]/$export-poll-status).
  { method: 'DELETE', pattern: '$op', interaction: 'operation', handler: (r, c, p) => invokeOperation(r, c, p) },
  { method: 'POST', pattern: ':type', interaction: 'create', handler: (r, c, p) => create(r, c, p.type) },
  { method: 'PUT', pattern: ':type', interaction: 'update', handler: (r, c, p) => conditionalUpdate(r, c, p.type) },
  { method: 'DELETE', pattern: ':type', interaction: 'delete', handler: (r, c, p) => conditionalDelete(r, c, p.type) },
  {
    method: 'GET',
    pattern: ':type',
    interaction: 'search-type',
    handler: (r, c, p) => searchRoute(r, c, { resourceType: p.type }),
  },
  {
    method: 'POST',
    pattern: ':type/_search',
    interaction: 'search-type',
    handler: (r, c, p) => searchRoute(r, c, { resourceType: p.type }),
  },
  { method: 'GET', pattern: ':type/_history', interaction: 'history-type', handler: (r, c, p) => history(r, c, p) },
  { method: 'GET', pattern: ':type/$op', interaction: 'operation', handler: (r, c, p) => invokeOperation(r, c, p) },
  { method: 'POST', pattern: ':type/$op', interaction: 'operation', handler: (r, c, p) => invokeOperation(r, c, p) },
  { method: 'GET', pattern: ':type/:id', interaction: 'read', handler: (r, c, p) => read(r, c, p.type, p.id) },
  { method: 'PUT', pattern: ':type/:id', interaction: 'update', handler: (r, c, p) => update(r, c, p.type, p.id) },
  { method: 'PATCH', pattern: ':type', interaction: 'patch', handler: (r, c, p) => conditionalPatch(r, c, p.type) },
  { method: 'PATCH', pattern: ':type/:id', interaction: 'patch', handler: (r, c, p) => patch(r, c, p.type, p.id) },
  { method: 'DELETE', pattern: ':type/:id', interaction: 'delete', handler: (r, c, p) => remove(r, c, p.type, p.id) },
  {
    method: 'GET',
    pattern: ':type/:id/_history',
    interaction: 'history-instance',
    handler: (r, c, p) => history(r, c, p),
  },
  {
    method: 'GET',
    pattern: ':type/:id/_history/:vid',
    interaction: 'vread',
    handler: (r, c, p) => vread(r, c, p.type, p.id, p.vid),
  },
  {
    method: 'GET',
    pattern: ':compartment/:id/:type',
    interaction: 'search-type',
    handler: (r, c, p) => searchRoute(r, c, { resourceType: p.type, compartment: { type: p.compartment, id: p.id } }),
  },
  { method: 'GET', pattern: ':type/:id/$op', interaction: 'operation', handler: (r, c, p) => invokeOperation(r, c, p) },
  {
    method: 'POST',
    pattern: ':type/:id/$op',
    interaction: 'operation',
    handler: (r, c, p) => invokeOperation(r, c, p),
  },
];

function matchSegments(pattern: string, segments: string[]): RouteParams | undefined {
  const parts = pattern === '' ? [] : pattern.split('/');
  if (parts.length !== segments.length) return undefined;
  const params: RouteParams = {};
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    const segment = segments[i];
    if (part === '$op') {
      if (!segment.startsWith('$') || segment.length < 2) return undefined;
      params.op = segment.slice(1);
    } else if (part.startsWith(':')) {
      // A variable never swallows a reserved segment (_history, _search, $operation).
      if (segment === '' || segment.startsWith('_') || segment.startsWith('$')) return undefined;
      // Resource types start with a capital, so "metadata" never stands for a type (DELETE /metadata: 405).
      if ((part === ':type' || part === ':compartment') && !/^[A-Z]/.test(segment)) return undefined;
      params[part.slice(1)] = segment;
    } else if (part !== segment) {
      return undefined;
    }
  }
  return params;
}

export function matchRoute(method: FhirMethod, path: string): { route: Route; params: RouteParams } {
  const segments = path === '' ? [] : path.split('/').map((s) => decodeURIComponent(s));
  const effectiveMethod = method === 'HEAD' ? 'GET' : method;
  let pathMatched = false;
  for (const route of routes) {
    const params = matchSegments(route.pattern, segments);
    if (!params) continue;
    pathMatched = true;
    if (route.method === effectiveMethod) return { route, params };
  }
  if (pathMatched) throw methodNotAllowed(`${method} is not supported on /${path}`);
  throw notFound(`No FHIR endpoint at /${path}`);
}

/** The pipeline: route → interceptors (authorization) → handler → interceptors (audit). */
export async function dispatch(request: FhirRequest, context: ServerContext): Promise<FhirResponse> {
  request.startedAt ??= Date.now();
  const { route, params } = matchRoute(request.method, request.path);
  if (params.type) requireResourceType(params.type);
  if (params.compartment) requireResourceType(params.compartment);
  const interaction: Interaction = {
    kind: route.interaction,
    resourceType: params.type,
    id: params.id,
    operation: params.op,
    ...(params.compartment ? { compartment: { type: params.compartment, id: params.id } } : {}),
  };
  try {
    for (const interceptor of context.interceptors) await interceptor.beforeAuthorization?.(request, interaction);
    const policy = await policyOf(request, context);
    const operation = params.op ? context.operations.find((o) => o.name === params.op) : undefined;
    authorizeInteraction(policy, interaction, operation);
    for (const interceptor of context.interceptors) await interceptor.beforeInteraction?.(request, interaction);
    const response = await runWithRetries(request, context, () => route.handler(request, context, params), {
      readOnly: isReadOnly(route, params, context),
      retriesVersionRaces: !request.unitOfWork,
    });
    for (const interceptor of context.interceptors)
      await interceptor.afterInteraction?.(request, interaction, { response });
    return response;
  } catch (error) {
    // An unexpected error is a 500 to the client: interceptors (the audit) see it as one.
    const answered = error instanceof FhirError ? error : serverError('Internal error');
    for (const interceptor of context.interceptors)
      await interceptor.afterInteraction?.(request, interaction, { error: answered });
    throw error;
  }
}

/** Interactions that change nothing: their reads are checked to agree on one commit boundary. */
function isReadOnly(route: Route, params: RouteParams, context: ServerContext): boolean {
  switch (route.interaction) {
    case 'read':
    case 'vread':
    case 'search-type':
    case 'search-system':
    case 'history-instance':
    case 'history-type':
    case 'history-system':
      return true;
    case 'operation': {
      const operation = context.operations.find((o) => o.name === params.op);
      return operation?.affectsState === false && !operation.spansCommits;
    }
    default:
      return false;
  }
}

/** The requester's filter on every read of current documents, per collection (resource types only). */
export function readRestriction(policy: AccessPolicy): Restriction | undefined {
  if (policy.requester.unrestricted) return undefined;
  const cache = new Map<string, ReturnType<Restriction>>();
  return (collection) => {
    if (!cache.has(collection)) {
      const filter = isResourceType(collection) ? policy.filter(collection, ['r', 's']) : undefined;
      cache.set(collection, filter === NOTHING ? NONE : filter);
    }
    return cache.get(collection);
  };
}

/** Runs of one request after reads that did not line up, or after lost version races (no If-Match). */
const READ_ATTEMPTS = 5;
const VERSION_RACE_ATTEMPTS = 25;

/** The answer a read-only request gets once its time budget is spent, instead of a late one. */
function overBudget(budgetMs: number): FhirError {
  return timedOut(
    `The request did not finish within its time budget of ${budgetMs} ms (REQUEST_TIME_BUDGET_MS): ` +
      'narrow the search (fewer types, a more selective parameter, a smaller _count), or try again later',
  );
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs a handler with a fresh ReadView per attempt. A read-only interaction whose reads straddled a
 * commit runs again (then 503). A write without If-Match that lost a version race runs again on the
 * new current version, so each concurrent writer becomes its own version (then 409).
 */
async function runWithRetries(
  request: FhirRequest,
  context: ServerContext,
  handle: () => Promise<FhirResponse>,
  options: { readOnly: boolean; retriesVersionRaces: boolean },
): Promise<FhirResponse> {
  const restriction = request.access ? readRestriction(request.access) : undefined;
  const budgetMs = context.config.requestTimeBudgetMs;
  // Writes are not cut short: one that has begun its commit must finish it, and its reads are few.
  // The entries of a batch share their Bundle's budget, so that the Bundle too answers within it; a
  // transaction's reads run after its commit, which has no budget, so each has its own.
  const batch = (request.bundle?.request.body as Bundle | undefined)?.type === 'batch';
  const startedAt = (batch ? request.bundle?.request.startedAt : request.startedAt) ?? Date.now();
  const deadline = options.readOnly && budgetMs > 0 ? startedAt + budgetMs : undefined;
  for (let attempt = 1; ; attempt++) {
    const reads = context.store.readView(restriction, deadline, (query) =>
      ((request.bundle?.request ?? request).abandonedQueries ??= []).push(query),
    );
    request.reads = reads;
    try {
      const response = await handle();
      if (options.readOnly) await reads.validate();
      return response;
    } catch (error) {
      if (error instanceof TimeBudgetError) throw overBudget(budgetMs);
      if (error instanceof ReadConflictError) {
        if (attempt >= READ_ATTEMPTS) {
          throw serviceUnavailable('Commits kept landing while this request read; try again');
        }
        const wait = 5 + Math.random() * 20 * attempt;
        if (deadline !== undefined && Date.now() + wait >= deadline) throw overBudget(budgetMs);
        await pause(wait);
        continue;
      }
      if (error instanceof VersionRaceError && options.retriesVersionRaces && attempt < VERSION_RACE_ATTEMPTS) {
        await pause(Math.random() * 10 * Math.min(attempt, 10));
        continue;
      }
      if (error instanceof CommitAbortedError) {
        throw serviceUnavailable('The commit was taken over by recovery before it completed; nothing was stored');
      }
      throw error;
    } finally {
      request.reads = undefined;
    }
  }
}
