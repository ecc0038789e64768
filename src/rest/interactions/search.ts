import { notSupported } from '../../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../../fhir/request';
import type { SearchTarget, ServerContext } from '../context';

/** Search routes delegate to the search module; without one the server says so instead of a 404. */
export function searchRoute(request: FhirRequest, context: ServerContext, target: SearchTarget): Promise<FhirResponse> {
  if (!context.search) throw notSupported('Search is not enabled on this server');
  return context.search(request, context, target);
}
