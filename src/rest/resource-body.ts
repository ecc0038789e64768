import type { Resource } from '@medplum/fhirtypes';
import { ID_PATTERN, isResourceType } from '../fhir/definitions';
import { badRequest, notFound } from '../fhir/outcome';

/** Unknown types are 404: the URL names an endpoint that does not exist (RESTful API, "Unknown type"). */
export function requireResourceType(type: string): void {
  if (!isResourceType(type)) throw notFound(`Unknown resource type "${type}"`);
}

export function requireValidId(id: string, type: string): void {
  if (!ID_PATTERN.test(id)) {
    throw badRequest(`"${id}" is not a valid resource id (1 to 64 of A-Z, a-z, 0-9, "-" and ".")`, `${type}.id`);
  }
}

/**
 * The id of a body that is read before the body is validated (conditional update, transactions): a
 * string id or none, so that a look-up by it can never be a query (`"id": {"$ne": null}`).
 */
export function requireBodyId(resource: Resource, type: string): void {
  const id: unknown = resource.id;
  if (id !== undefined && (typeof id !== 'string' || !ID_PATTERN.test(id))) {
    throw badRequest('The resource id must be 1 to 64 of A-Z, a-z, 0-9, "-" and "."', `${type}.id`);
  }
}

/**
 * Checks what must hold of a body before anything else looks at it: a JSON object whose resourceType
 * is the type in the URL. Deeper checks belong to validation (an interceptor).
 */
export function requireResourceBody(body: unknown, expectedType: string): Resource {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The request body must be a FHIR resource (a JSON object)');
  }
  const resourceType = (body as { resourceType?: unknown }).resourceType;
  if (resourceType === undefined) {
    throw badRequest('The resource has no resourceType', 'resourceType');
  }
  if (resourceType !== expectedType) {
    throw badRequest(
      `The resource's resourceType "${String(resourceType)}" does not match the type in the URL, "${expectedType}"`,
      'resourceType',
    );
  }
  return body as Resource;
}
