import type { Resource } from '@medplum/fhirtypes';
import { allOk, badRequest, conflict, issue, notFound, outcome, preconditionFailed } from '../../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../../fhir/request';
import type { CurrentDocument } from '../../store/documents';
import { ClaimTakenError } from '../../store/journal';
import { newId } from '../../store/resource-store';
import {
  CLAIM_ATTEMPTS,
  claimKey,
  findConditional,
  parseConditionalQuery,
  requireUnusedId,
  settleClaim,
} from '../conditional';
import type { ServerContext } from '../context';
import { requireBodyId, requireResourceBody } from '../resource-body';
import { outcomeResponse, versionHeaders, writeResponse } from '../respond';
import { commitWrites } from '../write';
import { createResource, update } from './crud';
import { patch } from './patch';

/** The answer when a condition matched an existing resource and nothing was written. */
function matchedResponse(request: FhirRequest, doc: CurrentDocument, type: string, text: string): FhirResponse {
  const response = writeResponse(request, 200, doc, type, text);
  return { ...response, outcome: allOk(text) };
}

function tooManyMatches(what: string, count: number, type: string): never {
  throw preconditionFailed(`${what} matches ${count > 2 ? count : 'more than one'} ${type} resources`);
}

/**
 * Retries a conditional write that lost a claim race: the loser searches again and finds the
 * winner's resource (or, for a stale claim, takes the claim after settleClaim dropped it).
 */
async function withClaimRetries(
  request: FhirRequest,
  context: ServerContext,
  key: string,
  attempt: () => Promise<FhirResponse>,
): Promise<FhirResponse> {
  for (let i = 0; i < CLAIM_ATTEMPTS; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof ClaimTakenError)) throw error;
      await settleClaim(context, key, request.baseUrl);
    }
  }
  throw conflict(`Concurrent requests kept creating ${key}; retry the request`);
}

/** POST with If-None-Exist (RESTful API, "Conditional create"): 0 matches create, 1 returns it, more 412. */
export async function conditionalCreate(
  request: FhirRequest,
  context: ServerContext,
  type: string,
  body: Resource,
): Promise<FhirResponse> {
  const pairs = parseConditionalQuery(context, request.headers.ifNoneExist ?? '', type, 'If-None-Exist');
  const key = claimKey(type, pairs);
  return withClaimRetries(request, context, key, async () => {
    const matches = await findConditional(context, request, type, pairs, 2);
    if (matches.length > 1) tooManyMatches('If-None-Exist', matches.length, type);
    if (matches.length === 1) {
      return matchedResponse(
        request,
        matches[0],
        type,
        `If-None-Exist matched ${type}/${matches[0]._id}; nothing created`,
      );
    }
    return createResource({ ...request, claim: key }, context, type, body);
  });
}

/**
 * PUT [type]?query (RESTful API, "Conditional update"): no match creates (with the body's id, or a
 * new one), one match is updated (the body's id, if any, must be its id), several answer 412.
 */
export async function conditionalUpdate(
  request: FhirRequest,
  context: ServerContext,
  type: string,
): Promise<FhirResponse> {
  const resource = requireResourceBody(request.body, type);
  requireBodyId(resource, type);
  const pairs = parseConditionalQuery(context, new URLSearchParams(request.query).toString(), type, 'PUT query');
  const key = claimKey(type, pairs);
  return withClaimRetries(request, context, key, async () => {
    const matches = await findConditional(context, request, type, pairs, 2);
    if (matches.length > 1) tooManyMatches('The conditional update', matches.length, type);
    if (matches.length === 1) {
      const id = matches[0]._id;
      if (resource.id !== undefined && resource.id !== id) {
        throw badRequest(
          `The resource id "${resource.id}" is not the id of the matched ${type}, "${id}"`,
          `${type}.id`,
        );
      }
      return update({ ...request, body: { ...resource, id } }, context, type, id);
    }
    if (resource.id !== undefined) await requireUnusedId(context, type, resource.id);
    const id = resource.id ?? newId();
    return update({ ...request, body: { ...resource, id }, claim: key }, context, type, id);
  });
}

/**
 * DELETE [type]?query (RESTful API, "Conditional delete"): every match is deleted in one commit, up
 * to CONDITIONAL_DELETE_MAX (1 by default, HAPI's default: several matches answer 412).
 */
export async function conditionalDelete(
  request: FhirRequest,
  context: ServerContext,
  type: string,
): Promise<FhirResponse> {
  const pairs = parseConditionalQuery(context, new URLSearchParams(request.query).toString(), type, 'DELETE query');
  const max = context.config.conditionalDeleteMax;
  const matches = await findConditional(context, request, type, pairs, max + 1);
  if (matches.length > max) {
    throw preconditionFailed(
      `The conditional delete matches more than ${max} ${type} resource${max === 1 ? '' : 's'} (CONDITIONAL_DELETE_MAX)`,
    );
  }
  if (!matches.length) {
    return outcomeResponse(
      200,
      outcome([issue('information', 'not-found', `No ${type} matches; nothing deleted`)]),
      request,
    );
  }
  const docs = await commitWrites(
    context,
    request,
    matches.map((previous) => ({ type, id: previous._id, method: 'DELETE' as const, previous })),
    { versionWasExpected: false },
  );
  const names = docs.map((d) => `${type}/${d._id}`).join(', ');
  const response = outcomeResponse(200, allOk(`Deleted ${names}`), request);
  if (docs.length === 1) response.headers = versionHeaders(docs[0]);
  return response;
}

/** PATCH [type]?query (RESTful API, "Patch"): the one match is patched; none 404, several 412. */
export async function conditionalPatch(
  request: FhirRequest,
  context: ServerContext,
  type: string,
): Promise<FhirResponse> {
  const pairs = parseConditionalQuery(context, new URLSearchParams(request.query).toString(), type, 'PATCH query');
  const matches = await findConditional(context, request, type, pairs, 2);
  if (matches.length > 1) tooManyMatches('The conditional patch', matches.length, type);
  if (!matches.length) throw notFound(`No ${type} matches the conditional patch`);
  return patch(request, context, type, matches[0]._id);
}
