import type { Group, OperationDefinition, Parameters, Resource } from '@medplum/fhirtypes';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findRepoDir } from '../checks/classes';
import { badRequest, FhirError, forbidden, gone, issue, notFound, notSupported, outcome } from '../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../fhir/request';
import type { Interceptor, OperationHandler, ServerContext } from '../rest/context';
import { requireEnvelope } from '../rest/envelope';
import type { CurrentDocument } from '../store/documents';
import type { Reader } from '../store/read-view';
import { compileView, ViewDefinitionError, type ViewPlan } from '../views/compile';
import { CONTENT_TYPES, formatRows } from '../views/format';
import { FORMAT_NAMES, readRunRequest, type RunRequest } from '../views/params';
import { ViewRunError } from '../views/rows';
import { primed, runView } from '../views/run';
import { publishShipped } from './publish';
import { loadCompartments } from './review/compartment';
import type { ReviewDefinitions } from './review/definitions';

/** Canonical of views/OperationDefinition-viewdefinition-run.json (the SQL-on-FHIR v2 operation). */
export const VIEWDEFINITION_RUN_DEFINITION = 'https://meds-fhir.org/fhir/OperationDefinition/viewdefinition-run';

/** Most patients a `group` may name: their ids travel in the run's filter. */
export const MAX_GROUP_MEMBERS = 20_000;

/** The ViewDefinitions (and the operation's definition) shipped in views/, stored at start-up. */
export function shippedViews(dir = findRepoDir('views')): Resource[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Resource);
}

/** A ViewDefinition: a logical model, not one of @medplum/fhirtypes' R4 types. */
function isViewDefinition(resource: { resourceType: string }): boolean {
  return resource.resourceType === 'ViewDefinition';
}

/** A view that cannot be run: 422, each issue naming the element at fault. */
function unusable(e: ViewDefinitionError): FhirError {
  return new FhirError(422, outcome(e.issues));
}

function runFailed(e: ViewRunError): FhirError {
  return new FhirError(422, outcome([issue('error', 'processing', e.message, e.at)]));
}

async function viewOf(run: RunRequest, reader: Reader, id: string | undefined): Promise<Resource> {
  const given = [id, run.viewResource, run.viewReference].filter((v) => v !== undefined).length;
  if (given === 0) throw badRequest('$viewdefinition-run needs viewResource or viewReference', 'viewReference');
  if (given > 1) {
    throw badRequest(
      'Give one of viewResource, viewReference or a ViewDefinition instance, not several',
      'viewReference',
    );
  }
  if (run.viewResource) {
    if (!isViewDefinition(run.viewResource)) {
      throw badRequest('viewResource must be a ViewDefinition', 'viewResource');
    }
    return run.viewResource;
  }
  const reference = id ? `ViewDefinition/${id}` : (run.viewReference as string);
  const at = id ? 'ViewDefinition.id' : 'viewReference';
  let doc: CurrentDocument | null;
  if (/^https?:\/\//.test(reference)) {
    const [url, version] = reference.split('|');
    const filter: Record<string, unknown> = { 'resource.url': url, deleted: { $ne: true } };
    if (version) filter['resource.version'] = version;
    doc = await reader.findOne<CurrentDocument>('ViewDefinition', filter);
  } else {
    const match = /^(?:ViewDefinition\/)?([A-Za-z0-9\-.]{1,64})$/.exec(reference);
    if (!match) throw badRequest(`${reference.slice(0, 100)} is not a ViewDefinition reference`, at);
    doc = await reader.findOne<CurrentDocument>('ViewDefinition', { _id: match[1] });
  }
  if (!doc) throw notFound(`${reference.slice(0, 200)} is not known`, at);
  if (doc.deleted) throw gone(`${reference.slice(0, 200)} has been deleted`, at);
  return doc.resource;
}

/** The patients whose compartments the run reads: those named, and the members of the groups named. */
async function compartmentsOf(run: RunRequest, reader: Reader): Promise<string[] | undefined> {
  if (!run.patients.length && !run.groups.length) return undefined;
  const patients = new Set(run.patients);
  for (const id of run.groups) {
    const doc = await reader.findOne<CurrentDocument>('Group', { _id: id, deleted: { $ne: true } });
    if (!doc) throw notFound(`Group/${id} is not known`, 'group');
    for (const member of (doc.resource as Group).member ?? []) {
      const match = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(member.entity?.reference ?? '');
      if (match && !member.inactive) patients.add(match[1]);
    }
    if (patients.size > MAX_GROUP_MEMBERS) {
      throw new FhirError(
        413,
        outcome([issue('error', 'too-costly', `The groups name more than ${MAX_GROUP_MEMBERS} patients`, 'group')]),
      );
    }
  }
  return [...patients];
}

function compiled(view: Resource): ViewPlan {
  try {
    return compileView(view);
  } catch (e) {
    if (e instanceof ViewDefinitionError) throw unusable(e);
    throw e;
  }
}

/** Rewrites the engine's errors of one stream into FhirErrors (422 naming the element). */
async function* reported<T>(source: AsyncGenerator<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (e) {
    if (e instanceof ViewRunError) throw runFailed(e);
    throw e;
  }
}

/**
 * SQL-on-FHIR v2 (issue 13): ViewDefinitions stored through the API (checked on write: their shape
 * and that their FHIRPath parses), the shipped views of views/, and `$viewdefinition-run` at system
 * level and on a stored ViewDefinition, streaming rows from the database through the request's reads.
 * Views over Patient may call medicationAdherence() (src/views/adherence.ts), computed with the
 * classes `$medication-review` uses.
 */
export async function registerViews(context: ServerContext, definitions: ReviewDefinitions): Promise<void> {
  const interceptor: Interceptor = {
    name: 'views',
    checkWrite: (resource) => {
      if (!isViewDefinition(resource)) return [];
      try {
        compileView(resource);
        return [];
      } catch (e) {
        if (e instanceof ViewDefinitionError) return e.issues;
        throw e;
      }
    },
  };
  context.interceptors.push(interceptor);

  const operation: OperationHandler = {
    name: 'viewdefinition-run',
    levels: ['system', 'instance'],
    resourceTypes: ['ViewDefinition'],
    affectsState: false,
    requires: { permissions: ['r', 's'] },
    definition: VIEWDEFINITION_RUN_DEFINITION,
    responseFormats: FORMAT_NAMES,
    async handle(request: FhirRequest, ctx, target): Promise<FhirResponse> {
      if (request.bundle) throw notSupported('$viewdefinition-run streams its answer: call it outside a Bundle');
      const body =
        request.body === undefined ? undefined : requireEnvelope<Parameters>(ctx, request.body, 'Parameters');
      const run = readRunRequest(request, body);
      // Captured now: the stream outlives the handler, and the dispatcher clears request.reads after it.
      const reads: Reader = request.reads ?? ctx.store.directReader();
      const plan = compiled(await viewOf(run, reads, target.id));
      const policy = request.access;
      if (policy && !policy.allows(plan.resource, 'r') && !policy.allows(plan.resource, 's')) {
        throw forbidden(`The token grants no read of ${plan.resource}, the view's resource`);
      }
      const compartments = await compartmentsOf(run, reads);
      // One consistent pair of classes and types for the whole run, as a review holds them.
      const { classes, types } = definitions;
      const adherence = {
        classes,
        today: new Date().toISOString().slice(0, 10),
        compartments: (reader: Reader, ids: string[]) => loadCompartments(reader, ids, types),
      };
      const scope = { compartments, since: run.since, limit: run.limit };
      const rows = await primed(reported(runView(reads, plan, scope, adherence)));
      return {
        status: 200,
        headers: {},
        stream: {
          contentType: CONTENT_TYPES[run.format],
          chunks: formatRows(rows, run.format, plan.names, run.header),
        },
      };
    },
  };
  context.operations.push(operation);

  // A broken shipped view stops start-up, as a broken profile does: it would otherwise 422 on every run.
  const shipped = shippedViews();
  for (const resource of shipped) {
    if (!isViewDefinition(resource)) continue;
    try {
      compileView(resource);
    } catch (e) {
      throw new Error(`views/${resource.id ?? '?'}: ${(e as Error).message}`);
    }
  }
  await publishShipped(context, shipped as (Resource | OperationDefinition)[]);
}
