import type { Coding } from '@medplum/fhirtypes';
import { UNRESTRICTED, type Requester, type UserReference } from '../../auth/requester';
import { parseScopes } from '../../auth/scopes';

/**
 * Who wrote a Subscription, as stored beside it: notifications are judged against what this requester
 * may see at the time of delivery (its scopes, care-team reach, clearance and Consents then), through
 * the same AccessPolicy a read of theirs would use. The scopes are kept as text and parsed again.
 */
export interface StoredOwner {
  unrestricted: boolean;
  subject?: string;
  clientId?: string;
  fhirUser?: UserReference;
  patient?: string;
  organization?: string;
  scope?: string;
  clearance: string[];
  purposeOfUse?: string;
  writeLabels?: Coding[];
}

export function storeOwner(requester: Requester): StoredOwner {
  const owner: StoredOwner = { unrestricted: requester.unrestricted, clearance: [...requester.clearance] };
  if (requester.subject) owner.subject = requester.subject;
  if (requester.clientId) owner.clientId = requester.clientId;
  if (requester.fhirUser) owner.fhirUser = { ...requester.fhirUser };
  if (requester.patient) owner.patient = requester.patient;
  if (requester.organization) owner.organization = requester.organization;
  if (requester.scope) owner.scope = requester.scope;
  if (requester.purposeOfUse) owner.purposeOfUse = requester.purposeOfUse;
  if (requester.writeLabels?.length) owner.writeLabels = requester.writeLabels;
  return owner;
}

export function ownerRequester(owner: StoredOwner): Requester {
  if (owner.unrestricted) return UNRESTRICTED;
  return {
    unrestricted: false,
    subject: owner.subject,
    clientId: owner.clientId,
    fhirUser: owner.fhirUser,
    patient: owner.patient,
    organization: owner.organization,
    grants: parseScopes(owner.scope),
    clearance: new Set(owner.clearance),
    purposeOfUse: owner.purposeOfUse,
    scope: owner.scope,
    writeLabels: owner.writeLabels,
  };
}
