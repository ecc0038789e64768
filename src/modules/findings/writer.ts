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

/** One patient's finding changes (reconcile's answer for it). */
export interface PatientWrites {
  patientId: string;
  writes: FindingWrite[];
}

/**
 * Stores the finding changes of several patients, as few transactions as the Bundle size allows: one
 * commit and one audited request for the lot rather than one per patient. A transaction that fails
 * (a finding acknowledged meanwhile, 412) is tried again one patient at a time, so each patient's
 * changes stay all or nothing and one patient's failure leaves the others stored. Answers the failure
 * of each patient whose changes could not be stored.
 */
export async function writePatientsFindings(
  context: ServerContext,
  batch: PatientWrites[],
): Promise<Map<string, unknown>> {
  const failed = new Map<string, unknown>();
  for (const group of groupsWithin(
    batch.filter((p) => p.writes.length),
    context.config.maxBundleEntries,
  )) {
    try {
      await writeFindings(
        context,
        group.flatMap((p) => p.writes),
        `findings:${group.map((p) => p.patientId).join(',')}`,
      );
    } catch (error) {
      if (group.length === 1) {
        failed.set(group[0].patientId, error);
        continue;
      }
      for (const { patientId, writes } of group) {
        await writeFindings(context, writes, `findings:${patientId}`).catch((e: unknown) => failed.set(patientId, e));
      }
    }
  }
  return failed;
}

/** Consecutive patients whose writes fit in one Bundle of `max` entries (a patient with more, alone). */
function groupsWithin(batch: PatientWrites[], max: number): PatientWrites[][] {
  const groups: PatientWrites[][] = [];
  let size = 0;
  for (const patient of batch) {
    const last = groups[groups.length - 1];
    if (last && size + patient.writes.length <= max) {
      last.push(patient);
      size += patient.writes.length;
    } else {
      groups.push([patient]);
      size = patient.writes.length;
    }
  }
  return groups;
}
