import type { Resource } from '@medplum/fhirtypes';
import { FhirError, outcome } from '../fhir/outcome';
import type { ServerContext } from './context';
import { requireResourceBody } from './resource-body';

/**
 * Checks the Bundle or Parameters a request carries before a handler reads it: a resource of the
 * expected type that is valid R4 as far as its own elements go (`entry` an array of entries,
 * `request.url` a uri, `parameter[n].name` a string ...), so that no handler trusts a shape nobody
 * checked. Refused with 400 and the validator's issues: the input is malformed, there is nothing to
 * process (a rule broken by a resource to store would be 422).
 */
export function requireEnvelope<T extends Resource>(context: ServerContext, body: unknown, type: T['resourceType']): T {
  const resource = requireResourceBody(body, type) as T;
  const errors = (context.checkEnvelope?.(resource) ?? []).filter(
    (i) => i.severity === 'error' || i.severity === 'fatal',
  );
  if (errors.length) throw new FhirError(400, outcome(errors));
  return resource;
}
