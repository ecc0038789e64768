import type { Resource } from '@medplum/fhirtypes';
import { allOk, badRequest, gone, issue, notFound, outcome, preconditionFailed } from '../../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../../fhir/request';
import { SERVED_FIELDS, type CurrentDocument } from '../../store/documents';
import type { AccessPolicy } from '../../auth/access-policy';
import { NOTHING } from '../../search/compile/element';
import { requireVisibleForWrite, visibleOrAbsent } from '../../auth/write-access';
import type { Reader } from '../../store/read-view';
import { newId } from '../../store/resource-store';
import type { ServerContext } from '../context';
import { parseIfMatch, versionFromEtag } from '../headers';
import { requireResourceBody, requireValidId } from '../resource-body';
import { outcomeResponse, versionHeaders, writeResponse } from '../respond';
import { checkWrite, commitWrites, sameContent } from '../write';
import { conditionalCreate } from './conditional-crud';

/** The current version, or 404 / 410 (RESTful API: a deleted resource is Gone). */
export async function readCurrent(
  context: ServerContext,
  type: string,
  id: string,
  reader?: Reader,
  access?: AccessPolicy,
  projection?: typeof SERVED_FIELDS,
): Promise<CurrentDocument> {
  const doc = await context.store.read(type, id, reader, projection);
  // A write reads unfiltered (it must see the true current version); what the requester may not see is absent.
  if (!doc || (access && !access.sees(type, doc))) throw notFound(`${type}/${id} is not known`);
  if (doc.deleted) throw gone(`${type}/${id} was deleted (version ${doc.v})`);
  return doc;
}

/** If-None-Match / If-Modified-Since on read (RESTful API, "Conditional read"): 304 when nothing changed. */
function notModified(request: FhirRequest, doc: CurrentDocument): boolean {
  const { ifNoneMatch, ifModifiedSince } = request.headers;
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*') return true;
    return ifNoneMatch.split(',').some((tag) => versionFromEtag(tag) === doc.v);
  }
  if (ifModifiedSince !== undefined) {
    const since = Date.parse(ifModifiedSince);
    // HTTP dates have second precision; a version written within that second counts as not newer.
    if (!Number.isNaN(since)) return Math.floor(doc.ts.getTime() / 1000) * 1000 <= since;
  }
  return false;
}

export async function read(
  request: FhirRequest,
  context: ServerContext,
  type: string,
  id: string,
): Promise<FhirResponse> {
  requireValidId(id, type);
  const doc = await readCurrent(context, type, id, request.reads, undefined, SERVED_FIELDS);
  if (notModified(request, doc)) return { status: 304, headers: versionHeaders(doc) };
  return { status: 200, headers: versionHeaders(doc), body: doc.resource };
}

export async function vread(
  request: FhirRequest,
  context: ServerContext,
  type: string,
  id: string,
  versionText: string,
): Promise<FhirResponse> {
  requireValidId(id, type);
  const version = /^[1-9]\d{0,15}$/.test(versionText) ? Number(versionText) : undefined;
  if (version === undefined) throw notFound(`${type}/${id} has no version "${versionText}"`);
  const restriction = request.access?.filter(type, ['r', 's'], 'history');
  const doc = restriction === NOTHING ? null : await context.store.vread(type, id, version, restriction);
  if (!doc) {
    const current = await context.store.read(type, id, request.reads);
    throw notFound(current ? `${type}/${id} has no version ${version}` : `${type}/${id} is not known`);
  }
  if (doc.deleted || !doc.resource) throw gone(`Version ${version} of ${type}/${id} is its deletion`);
  return { status: 200, headers: versionHeaders(doc), body: doc.resource };
}

export async function create(request: FhirRequest, context: ServerContext, type: string): Promise<FhirResponse> {
  const body = requireResourceBody(request.body, type);
  // A transaction resolved If-None-Exist while preparing and assigned the id; only a lone POST searches here.
  if (request.headers.ifNoneExist !== undefined && request.assignedId === undefined) {
    return conditionalCreate(request, context, type, body);
  }
  return createResource(request, context, type, body);
}

/** A plain create: the server assigns the id (the spec says a server SHALL ignore one in the body). */
export async function createResource(
  request: FhirRequest,
  context: ServerContext,
  type: string,
  body: Resource,
): Promise<FhirResponse> {
  const { id: _ignored, ...rest } = body;
  const resource = rest as Resource;
  const id = request.assignedId ?? newId();
  const interaction = { kind: 'create' as const, resourceType: type, id };
  await checkWrite(context, request, interaction, { ...resource, id } as Resource);
  const claims = request.claim ? [request.claim] : undefined;
  const [doc] = await commitWrites(
    context,
    request,
    [{ type, id, method: 'POST', previous: null, resource, ...(claims ? { claims } : {}) }],
    { versionWasExpected: false },
  );
  return writeResponse(request, 201, doc, type, `Created ${type}/${id}`);
}

export async function update(
  request: FhirRequest,
  context: ServerContext,
  type: string,
  id: string,
): Promise<FhirResponse> {
  requireValidId(id, type);
  const resource = requireResourceBody(request.body, type);
  if (resource.id === undefined) throw badRequest('The resource must have an id to be updated', `${type}.id`);
  if (resource.id !== id) {
    throw badRequest(`The resource id "${resource.id}" does not match the id in the URL, "${id}"`, `${type}.id`);
  }
  const previous = await context.store.read(type, id);
  requireVisibleForWrite(request.access, type, id, previous);
  const expected = request.headers.ifMatch !== undefined ? parseIfMatch(request.headers.ifMatch) : undefined;
  if (expected !== undefined && (!previous || previous.deleted || !expected.accepts(previous.v))) {
    throw preconditionFailed(
      previous && !previous.deleted
        ? `If-Match ${expected.text} does not name the current version of ${type}/${id}, which is ${previous.v}`
        : `If-Match ${expected.text} was given but ${type}/${id} has no current version`,
    );
  }
  await checkWrite(context, request, { kind: 'update', resourceType: type, id }, resource);
  // An update that changes nothing creates no version (HAPI's no-op update): re-sent syncs stay idempotent.
  if (previous && !previous.deleted && sameContent(previous.resource, resource)) {
    return writeResponse(request, 200, previous, type, `${type}/${id} is unchanged`);
  }
  const created = !previous || previous.deleted === true;
  const claims = created && request.claim ? [request.claim] : undefined;
  const [doc] = await commitWrites(
    context,
    request,
    [{ type, id, method: 'PUT', previous, resource, ...(claims ? { claims } : {}) }],
    { versionWasExpected: expected !== undefined },
  );
  return writeResponse(request, created ? 201 : 200, doc, type, `${created ? 'Created' : 'Updated'} ${type}/${id}`);
}

export async function remove(
  request: FhirRequest,
  context: ServerContext,
  type: string,
  id: string,
): Promise<FhirResponse> {
  requireValidId(id, type);
  // A resource the requester may not see is answered as one that does not exist, and left alone.
  const previous = visibleOrAbsent(request.access, type, await context.store.read(type, id));
  const expected = request.headers.ifMatch !== undefined ? parseIfMatch(request.headers.ifMatch) : undefined;
  if (expected !== undefined && (!previous || previous.deleted || !expected.accepts(previous.v))) {
    throw preconditionFailed(`If-Match ${expected.text} does not name the current version of ${type}/${id}`);
  }
  // Deleting what does not exist, or is already deleted, succeeds without a new version (RESTful API, delete).
  if (!previous || previous.deleted) {
    const text = previous ? `${type}/${id} was already deleted` : `${type}/${id} does not exist; nothing was deleted`;
    return outcomeResponse(200, outcome([issue('information', 'not-found', text)]), request);
  }
  const [doc] = await commitWrites(context, request, [{ type, id, method: 'DELETE', previous }], {
    versionWasExpected: expected !== undefined,
  });
  const response = outcomeResponse(200, allOk(`Deleted ${type}/${id} (version ${doc.v})`), request);
  response.headers = versionHeaders(doc);
  return response;
}
