import type {
  CapabilityStatementRestResourceSearchParam,
  OperationOutcomeIssue,
  Parameters,
  Resource,
  SearchParameter,
} from '@medplum/fhirtypes';
import { compile } from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { isResourceType } from '../fhir/definitions';
import { badRequest, issue, notFound, notSupported } from '../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../fhir/request';
import type { OperationHandler, SearchHandler, ServerContext } from '../rest/context';
import { parsePrefer } from '../rest/headers';
import { requesterHash } from '../auth/requester';
import { compileQuery, indexedTypes, matchDocuments, search, searchIndexes, SearchParameterRegistry } from '../search';
import { checkSearchLimits, searchLimits } from '../search/limits';
import { UNSUPPORTED_PARAMETERS } from '../search/parse';
import { definitionsOf } from './definitions-feed';
import { SearchParameterRollout, type RolloutOptions, type RolloutStatus } from './search-rollout';

const PARAM_TYPES = new Set(['number', 'date', 'string', 'token', 'reference', 'composite', 'quantity', 'uri']);

/**
 * Why a SearchParameter cannot be used, checked before it is stored (422): a stored definition the
 * registry cannot index would silently answer every search on it with nothing.
 */
export function searchParameterProblems(
  definition: SearchParameter,
  registry: SearchParameterRegistry,
  maxExpressionLength = Infinity,
): OperationOutcomeIssue[] {
  const problems: OperationOutcomeIssue[] = [];
  // A leading "_" is the specification's (_id, _count, _has ...): a runtime code may not take one.
  if (!definition.code || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(definition.code)) {
    problems.push(
      issue('error', 'required', 'SearchParameter.code must be a name like "dose-form"', 'SearchParameter.code'),
    );
  } else {
    const conflict = registry.conflictOf(definition);
    if (conflict) {
      problems.push(
        issue(
          'error',
          'business-rule',
          `${conflict}; a runtime SearchParameter may not replace it`,
          'SearchParameter.code',
        ),
      );
    }
  }
  if (!definition.type || !PARAM_TYPES.has(definition.type)) {
    problems.push(
      issue(
        'error',
        'not-supported',
        `Search parameters of type ${definition.type} are not supported`,
        'SearchParameter.type',
      ),
    );
  }
  (definition.base ?? []).forEach((base: string, i) => {
    if (!isResourceType(base) && base !== 'Resource' && base !== 'DomainResource') {
      problems.push(issue('error', 'code-invalid', `Unknown resource type ${base}`, `SearchParameter.base[${i}]`));
    }
  });
  if (!definition.expression) {
    problems.push(
      issue('error', 'required', 'A SearchParameter needs an expression to be indexed', 'SearchParameter.expression'),
    );
  } else if (definition.expression.length > maxExpressionLength) {
    // Compiling is what costs: a megabyte of FHIRPath held the event loop for seconds.
    problems.push(
      issue(
        'error',
        'too-costly',
        `The expression is longer than ${maxExpressionLength} characters (MAX_FHIRPATH_LENGTH)`,
        'SearchParameter.expression',
      ),
    );
  } else {
    try {
      compile(definition.expression, r4Model);
    } catch (error) {
      problems.push(
        issue(
          'error',
          'invalid',
          `The expression is not valid FHIRPath: ${(error as Error).message}`,
          'SearchParameter.expression',
        ),
      );
    }
  }
  if (!definition.url) {
    problems.push(issue('error', 'required', 'A runtime SearchParameter needs a url', 'SearchParameter.url'));
  }
  return problems;
}

function searchHandler(registry: SearchParameterRegistry): SearchHandler {
  return async (request, context, { resourceType, compartment }) => {
    const params: [string, string][] = [...request.query];
    // POST [type]/_search: the form body carries parameters too (R4 search, "Search with POST").
    if (request.body instanceof URLSearchParams) params.push(...request.body.entries());
    else if (request.method === 'POST' && request.body !== undefined) {
      throw badRequest('POST _search takes an application/x-www-form-urlencoded body');
    }
    checkSearchLimits(params, searchLimits(context.config));
    if (compartment && compartment.type !== 'Patient') {
      throw notSupported(`Compartment searches are supported for the Patient compartment, not ${compartment.type}`);
    }
    const bundle = await search(
      context.store.db,
      {
        resourceType,
        params,
        baseUrl: request.baseUrl,
        lenient: parsePrefer(request.headers.prefer).handling === 'lenient',
        ...(compartment ? { compartment } : {}),
        ...(request.requester ? { requester: requesterHash(request.requester) } : {}),
      },
      registry,
      {
        maxCount: context.config.maxPageSize,
        defaultCount: context.config.defaultPageSize,
        pageSecret: context.pageTokens,
        reader: request.reads,
      },
    );
    return { status: 200, body: bundle, headers: {} };
  };
}

function capabilityParams(
  registry: SearchParameterRegistry,
  type: string,
): CapabilityStatementRestResourceSearchParam[] {
  return registry
    .forType(type)
    .filter((p) => p.status === 'active' && !UNSUPPORTED_PARAMETERS.has(p.code) && p.type !== 'special')
    .map((p) => ({ name: p.code, type: p.type, ...(p.url ? { definition: p.url } : {}) }));
}

function statusParameters(status: RolloutStatus): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'code', valueCode: status.code },
      { name: 'status', valueCode: status.completed ? 'completed' : 'in-progress' },
      { name: 'done', valueInteger: status.done },
      { name: 'total', valueInteger: status.total },
    ],
  };
}

/**
 * Search as part of the pipeline: values indexed on every write (the store's indexer), the search
 * routes, the CapabilityStatement's searchParams, and runtime SearchParameters: checked before they
 * are stored, then rolled out to every server process and reindexed in the background, searchable
 * once done (src/modules/search-rollout.ts).
 */
export async function registerSearch(
  context: ServerContext,
  registry: SearchParameterRegistry,
  options: RolloutOptions = {},
): Promise<void> {
  const rollout = new SearchParameterRollout(
    context,
    registry,
    (definition) => searchParameterProblems(definition, registry),
    options,
  );
  context.interceptors.push({
    name: 'search-parameters',
    checkWrite: (resource: Resource) =>
      resource.resourceType === 'SearchParameter'
        ? searchParameterProblems(resource as SearchParameter, registry, context.config.maxFhirPathLength)
        : [],
  });
  // Stored ones at start-up, this process's commits at once, every other process's through the feed.
  const definitions = definitionsOf(context);
  await definitions.subscribe(['SearchParameter'], (change) => rollout.apply(change));
  definitions.onPoll(() => rollout.poll());

  const status: OperationHandler = {
    name: 'reindex-status',
    levels: ['instance'],
    resourceTypes: ['SearchParameter'],
    affectsState: false,
    requires: { permissions: ['r'], type: 'SearchParameter' },
    definition: 'https://meds-fhir.org/fhir/OperationDefinition/SearchParameter-reindex-status',
    async handle(_request: FhirRequest, _ctx: ServerContext, target): Promise<FhirResponse> {
      // From the job in the database, so that every server answers alike.
      const status = await rollout.status(target.id as string);
      if (!status) throw notFound(`SearchParameter/${target.id} is not known`);
      return { status: 200, body: statusParameters(status), headers: {} };
    },
  };
  context.operations.push(status);
  context.search = searchHandler(registry);
  context.findMatches = (type, query, limit, baseUrl, reader) =>
    matchDocuments(context.store.db, registry, type, query, limit, baseUrl, reader);
  context.compileQuery = (type, query, baseUrl) => compileQuery(context.store.db, registry, type, query, baseUrl);
  context.capabilities.push({
    searchInteractions: true,
    searchParams: (type) => capabilityParams(registry, type),
  });
}

/** The compound indexes search needs, registered before the store creates indexes at start-up. */
export function registerSearchIndexes(addIndexes: (type: string, indexes: ReturnType<typeof searchIndexes>) => void) {
  for (const type of indexedTypes()) addIndexes(type, searchIndexes(type));
}
