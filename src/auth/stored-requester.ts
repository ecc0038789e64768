import type { Coding } from '@medplum/fhirtypes';
import { UNRESTRICTED, type Requester, type UserReference } from './requester';
import { parseScopes } from './scopes';

/**
 * A requester as work that outlives its request keeps it (an export job, a Subscription's owner): what
 * the token said, so that whichever process does the work later makes the access decision again, with
 * the care teams, Consents and labels of that time. The scopes are kept as text and parsed again.
 */
export interface StoredRequester {
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

const OPTIONAL_CLAIMS = [
  'subject',
  'clientId',
  'fhirUser',
  'patient',
  'organization',
  'scope',
  'purposeOfUse',
  'writeLabels',
] as const;

export function storeRequester(requester: Requester): StoredRequester {
  const stored: StoredRequester = { unrestricted: requester.unrestricted, clearance: [...requester.clearance] };
  // Absent claims stay absent (the driver would store an undefined as null).
  for (const key of OPTIONAL_CLAIMS) {
    const value = requester[key];
    if (value !== undefined && !(Array.isArray(value) && value.length === 0)) Object.assign(stored, { [key]: value });
  }
  return stored;
}

export function restoreRequester(stored: StoredRequester): Requester {
  const { clearance, ...claims } = stored;
  const grants = stored.unrestricted ? UNRESTRICTED.grants : parseScopes(stored.scope);
  return { ...claims, grants, clearance: new Set(clearance) };
}
