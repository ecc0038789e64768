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
import type { Interceptor, OperationHandler, SearchHandler, ServerContext } from '../rest/context';
import { parsePrefer } from '../rest/headers';
import {
  indexedTypes,
  matchDocuments,
  reindex,
  search,
  searchIndexes,
  SearchParameterRegistry,
  type ParamStatus,
  type SearchParam,
} from '../search';
import { UNSUPPORTED_PARAMETERS } from '../search/parse';
import type { CurrentDocument } from '../store/documents';
import { ReindexLog } from '../search/reindex-log';

const PARAM_TYPES = new Set(['number', 'date', 'string', 'token', 'reference', 'composite', 'quantity', 'uri']);

/**
 * Why a SearchParameter cannot be used, checked before it is stored (422): a stored definition the
 * registry cannot index would silently answer every search on it with nothing.
 */
export function searchParameterProblems(
  definition: SearchParameter,
  registry: SearchParameterRegistry,
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
      },
      registry,
      {
        maxCount: context.config.maxPageSize,
        defaultCount: context.config.defaultPageSize,
        pageSecret: context.pageTokens,
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

function statusParameters(code: string, status: ParamStatus, progress?: { done: number; total: number }): Parameters {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'code', valueCode: code },
      { name: 'status', valueCode: status === 'active' ? 'completed' : 'in-progress' },
      { name: 'done', valueInteger: progress?.done ?? 0 },
      { name: 'total', valueInteger: progress?.total ?? 0 },
    ],
  };
}

/**
 * Search as part of the pipeline: values indexed on every write (the store's indexer), the search
 * routes, the CapabilityStatement's searchParams, and runtime SearchParameters: checked before they
 * are stored, then reindexed in the background and searchable once done.
 */
export async function registerSearch(context: ServerContext, registry: SearchParameterRegistry): Promise<void> {
  const log = new ReindexLog(context.store.db);
  const running = new Map<string, Promise<void>>();

  // One reindex at a time per url; one whose definition was replaced meanwhile stops or never starts.
  const startReindex = (param: SearchParam, version: number): void => {
    const key = param.url as string;
    const previous = running.get(key) ?? Promise.resolve();
    const next = previous
      .then(async () => {
        if (registry.byDefinitionUrl(key) !== param) return;
        const finished = await reindex(context.store.db, registry, param, { gate: context.store.writeGate });
        if (finished) await log.markDone(key, version);
      })
      .catch((error: unknown) => context.logger.error({ err: error, url: key }, 'reindexing failed'));
    running.set(key, next);
  };

  const load = async (doc: CurrentDocument): Promise<void> => {
    const definition = doc.resource as SearchParameter;
    if (!definition.url || searchParameterProblems(definition, registry).length) return;
    if (await log.isDone(definition.url, doc.v)) registry.addActive(definition);
    else startReindex(registry.add(definition), doc.v);
  };
  for await (const doc of context.store.db
    .collection<CurrentDocument>('SearchParameter')
    .find({ deleted: { $ne: true } })) {
    await load(doc);
  }

  const interceptor: Interceptor = {
    name: 'search-parameters',
    checkWrite: (resource: Resource) =>
      resource.resourceType === 'SearchParameter' ? searchParameterProblems(resource as SearchParameter, registry) : [],
    afterCommit: (committed) => {
      for (const { type, doc } of committed) {
        if (type !== 'SearchParameter') continue;
        const definition = doc.resource as SearchParameter;
        if (doc.deleted) {
          if (definition.url) registry.remove(definition.url);
          continue;
        }
        startReindex(registry.add(definition), doc.v);
      }
    },
  };
  context.interceptors.push(interceptor);

  const status: OperationHandler = {
    name: 'reindex-status',
    levels: ['instance'],
    resourceTypes: ['SearchParameter'],
    affectsState: false,
    definition: 'https://meds-fhir.org/fhir/OperationDefinition/SearchParameter-reindex-status',
    async handle(request: FhirRequest, ctx: ServerContext, target): Promise<FhirResponse> {
      const doc = await ctx.store.read('SearchParameter', target.id as string);
      const definition = doc && !doc.deleted ? (doc.resource as SearchParameter) : undefined;
      const param = definition?.url ? registry.byDefinitionUrl(definition.url) : undefined;
      if (!definition || !param) throw notFound(`SearchParameter/${target.id} is not known`);
      return { status: 200, body: statusParameters(param.code, param.status, param.progress), headers: {} };
    },
  };
  context.operations.push(status);
  context.search = searchHandler(registry);
  context.findMatches = (type, query, limit, baseUrl) =>
    matchDocuments(context.store.db, registry, type, query, limit, baseUrl);
  context.capabilities.push({
    searchInteractions: true,
    searchParams: (type) => capabilityParams(registry, type),
  });
}

/** The compound indexes search needs, registered before the store creates indexes at start-up. */
export function registerSearchIndexes(addIndexes: (type: string, indexes: ReturnType<typeof searchIndexes>) => void) {
  for (const type of indexedTypes()) addIndexes(type, searchIndexes(type));
}
