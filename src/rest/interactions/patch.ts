import type { Parameters, Resource } from '@medplum/fhirtypes';
import { badRequest, preconditionFailed, unsupportedMediaType } from '../../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../../fhir/request';
import { patchNotApplicable } from '../../patch/errors';
import { applyFhirPathPatch } from '../../patch/fhirpath-patch';
import { applyJsonPatch } from '../../patch/json-patch';
import { patchLimits } from '../../patch/limits';
import { requireEnvelope } from '../envelope';
import type { ServerContext } from '../context';
import { parseIfMatch } from '../headers';
import { requireValidId } from '../resource-body';
import { writeResponse } from '../respond';
import { checkWrite, commitWrites, sameContent } from '../write';
import { readCurrent } from './crud';

export const JSON_PATCH = 'application/json-patch+json';
const FHIR_BODIES = new Set(['application/fhir+json', 'application/json']);

type Patcher = (resource: Resource) => Resource;

/** Picks the patch format by Content-Type (RESTful API, "patch"), checking the body's shape before any read. */
function patcherFor(request: FhirRequest, context: ServerContext, type: string): Patcher {
  const body = request.body;
  if (body === undefined) throw badRequest('PATCH needs a body: a JSON Patch or a FHIRPath Patch Parameters resource');
  const contentType = request.headers.contentType;
  const limits = patchLimits(context.config);
  if (contentType === JSON_PATCH) return (resource) => applyJsonPatch(resource, body, limits);
  if (contentType !== undefined && FHIR_BODIES.has(contentType)) {
    const resourceType = (body as { resourceType?: unknown } | null)?.resourceType;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || resourceType !== 'Parameters') {
      throw badRequest(
        `A ${contentType} PATCH body must be a FHIRPath Patch (a Parameters resource); ` +
          `send JSON Patch as ${JSON_PATCH}`,
        'Parameters',
      );
    }
    const parameters = requireEnvelope<Parameters>(context, body, 'Parameters');
    return (resource) => applyFhirPathPatch(resource, parameters, limits);
  }
  throw unsupportedMediaType(
    `PATCH of ${type} takes ${JSON_PATCH} (JSON Patch) or application/fhir+json (FHIRPath Patch), not ${contentType ?? 'nothing'}`,
  );
}

/**
 * PATCH [type]/[id]: applies the patch to the current version and stores the result through the same
 * path as an update (If-Match, the write interceptors such as validation, no-op detection, the
 * transaction's unit of work), so a patch can do nothing an update could not.
 */
export async function patch(
  request: FhirRequest,
  context: ServerContext,
  type: string,
  id: string,
): Promise<FhirResponse> {
  requireValidId(id, type);
  const apply = patcherFor(request, context, type);
  const previous = await readCurrent(context, type, id, undefined, request.access);
  const expected = request.headers.ifMatch !== undefined ? parseIfMatch(request.headers.ifMatch) : undefined;
  if (expected !== undefined && !expected.accepts(previous.v)) {
    throw preconditionFailed(
      `If-Match ${expected.text} does not name the current version of ${type}/${id}, which is ${previous.v}`,
    );
  }
  const resource = apply(previous.resource);
  // A patch edits a resource; it cannot turn it into another one.
  if (resource.resourceType !== type) {
    throw patchNotApplicable(`The patch changes resourceType from ${type} to ${String(resource.resourceType)}`, [
      'resourceType',
    ]);
  }
  if (resource.id !== id) {
    throw patchNotApplicable(`The patch changes the id of ${type}/${id} (to ${String(resource.id)})`, [`${type}.id`]);
  }
  await checkWrite(context, request, { kind: 'patch', resourceType: type, id }, resource);
  if (sameContent(previous.resource, resource)) {
    return writeResponse(request, 200, previous, type, `${type}/${id} is unchanged by the patch`);
  }
  const [doc] = await commitWrites(context, request, [{ type, id, method: 'PATCH', previous, resource }], {
    versionWasExpected: expected !== undefined,
  });
  return writeResponse(request, 200, doc, type, `Patched ${type}/${id}`);
}
