import type { Bundle, BundleEntry, OperationOutcome } from '@medplum/fhirtypes';
import { FhirError } from '../../fhir/outcome';
import { parseScopes } from '../../auth/scopes';
import type { Requester } from '../../auth/requester';
import type { ServerContext } from '../../rest/context';
import { dispatch } from '../../rest/router';
import type { FindingWrite } from './reconcile';

/** The client id the audit trail names as the agent of every finding the server writes. */
export const FINDINGS_AGENT = 'meds-fhir server (standing findings)';

/**
 * The server itself, with full access: findings are derived from everything it holds. Not AUTH=off's
 * UNRESTRICTED, so the audit trail names the server rather than an anonymous client.
 */
export function serverRequester(): Requester {
  return {
    unrestricted: true,
    subject: FINDINGS_AGENT,
    clientId: FINDINGS_AGENT,
    grants: parseScopes('system/*.cruds'),
    clearance: new Set(['*']),
  };
}

/**
 * Stores one patient's finding changes as one transaction through the ordinary pipeline, so every
 * interceptor applies (validation, access labels, audit, subscription outboxes): all or nothing,
 * each update guarded by the version it was computed from, so an acknowledgement committed meanwhile
 * fails the transaction (412) and the patient is evaluated again rather than overwritten.
 */
export async function writeFindings(context: ServerContext, writes: FindingWrite[], requestId: string): Promise<void> {
  if (!writes.length) return;
  const baseUrl = context.config.publicBaseUrl ?? `http://localhost:${context.config.port}/fhir`;
  const entry: BundleEntry[] = writes.map(({ resource, previous }) => ({
    fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`,
    resource,
    request: {
      method: 'PUT',
      url: `${resource.resourceType}/${resource.id}`,
      ...(previous?.meta?.versionId ? { ifMatch: `W/"${previous.meta.versionId}"` } : {}),
    },
  }));
  const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry };
  const response = await dispatch(
    {
      method: 'POST',
      path: '',
      query: [],
      headers: { contentType: 'application/fhir+json' },
      body: bundle,
      baseUrl,
      requestId,
      requester: serverRequester(),
    },
    context,
  );
  if (response.status >= 300) throw new FhirError(response.status, response.body as OperationOutcome);
}
