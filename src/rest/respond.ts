import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import { allOk } from '../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../fhir/request';
import type { CurrentDocument } from '../store/documents';
import { etag, httpDate, parsePrefer } from './headers';

export function versionHeaders(doc: Pick<CurrentDocument, 'v' | 'ts'>): FhirResponse['headers'] {
  return { etag: etag(doc.v), lastModified: httpDate(doc.ts) };
}

export function versionUrl(request: FhirRequest, type: string, id: string, version: number): string {
  return `${request.baseUrl}/${type}/${id}/_history/${version}`;
}

/**
 * The answer to a write, shaped by `Prefer: return=` (RESTful API, "create/update/patch"): the stored
 * resource by default, nothing for minimal, or an OperationOutcome.
 */
export function writeResponse(
  request: FhirRequest,
  status: number,
  doc: CurrentDocument,
  type: string,
  message: string,
): FhirResponse {
  const headers = {
    ...versionHeaders(doc),
    location: versionUrl(request, type, doc._id, doc.v),
  };
  const preference = parsePrefer(request.headers.prefer).return ?? 'representation';
  let body: Resource | undefined;
  if (preference === 'representation') body = doc.resource;
  else if (preference === 'OperationOutcome') body = allOk(message);
  return { status, headers, body, outcome: allOk(message) };
}

export function outcomeResponse(status: number, outcome: OperationOutcome, request: FhirRequest): FhirResponse {
  const preference = parsePrefer(request.headers.prefer).return;
  return {
    status: preference === 'minimal' ? 204 : status,
    headers: {},
    body: preference === 'minimal' ? undefined : outcome,
  };
}
