import type { Coding } from '@medplum/fhirtypes';
import type { JWTPayload } from 'jose';
import { createHash } from 'node:crypto';
import { parseScopes, type ScopeGrant } from './scopes';

/** A FHIR reference to the requester, as the fhirUser claim names it ("Practitioner/123"). */
export interface UserReference {
  type: 'Practitioner' | 'Patient' | 'RelatedPerson' | 'PractitionerRole';
  id: string;
}

/** Who is asking and what their token grants: what every access decision is made from. */
export interface Requester {
  /** True only with AUTH=off: everything is allowed and every answer carries a warning. */
  unrestricted: boolean;
  subject?: string;
  clientId?: string;
  fhirUser?: UserReference;
  /** The `patient` claim: the compartment `patient/` scopes reach. */
  patient?: string;
  organization?: string;
  grants: ScopeGrant[];
  /** Sensitivity codes the requester may see regardless of consent; '*' is every code. */
  clearance: ReadonlySet<string>;
  purposeOfUse?: string;
  /** The token's scope claim as given, for the audit. */
  scope?: string;
  tokenId?: string;
  /** Labels the server adds to everything this requester writes (a registered client's configuration). */
  writeLabels?: Coding[];
}

const FHIR_USER = /(?:^|\/)(Practitioner|Patient|RelatedPerson|PractitionerRole)\/([A-Za-z0-9\-.]{1,64})$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function parseFhirUser(value: unknown): UserReference | undefined {
  const match = typeof value === 'string' ? FHIR_USER.exec(value) : null;
  return match ? { type: match[1] as UserReference['type'], id: match[2] } : undefined;
}

/** The requester a verified token describes (claims as ../shared/SECURITY.md spells them). */
export function requesterFromClaims(claims: JWTPayload): Requester {
  const clearance = Array.isArray(claims.clearance)
    ? claims.clearance.filter((c): c is string => typeof c === 'string')
    : typeof claims.clearance === 'string'
      ? claims.clearance.split(/[\s,]+/).filter(Boolean)
      : [];
  const patient = stringClaim(claims.patient);
  const organization = stringClaim(claims.organization)?.replace(/^.*\b(Organization\/[A-Za-z0-9\-.]{1,64})$/, '$1');
  return {
    unrestricted: false,
    subject: stringClaim(claims.sub),
    clientId: stringClaim(claims.client_id) ?? stringClaim(claims.azp),
    fhirUser: parseFhirUser(claims.fhirUser),
    patient: patient && ID.test(patient) ? patient : undefined,
    organization,
    grants: parseScopes(claims.scope),
    clearance: new Set(clearance),
    purposeOfUse: stringClaim(claims.purpose_of_use),
    scope: stringClaim(claims.scope),
    tokenId: stringClaim(claims.jti),
  };
}

/** AUTH=off: the whole server, as before access control existed. */
export const UNRESTRICTED: Requester = {
  unrestricted: true,
  subject: 'anonymous (AUTH=off)',
  grants: parseScopes('system/*.cruds'),
  clearance: new Set(['*']),
};

/** Who asks for the public endpoints (metadata): no token, so no scope and no clearance. */
export const ANONYMOUS: Requester = { unrestricted: false, grants: [], clearance: new Set() };

/**
 * The patient the requester is: a Patient fhirUser, or a patient-context token that names no user at
 * all (a patient's own app). A practitioner's token with a patient context is not the patient.
 */
export function selfPatient(requester: Requester): string | undefined {
  if (requester.fhirUser) return requester.fhirUser.type === 'Patient' ? requester.fhirUser.id : undefined;
  return requester.patient;
}

/** A stable key of who the requester is and what it may do: binds page tokens to their requester. */
export function requesterKey(requester: Requester): string {
  if (requester.unrestricted) return '*';
  return JSON.stringify([
    requester.subject ?? '',
    requester.clientId ?? '',
    requester.fhirUser ? `${requester.fhirUser.type}/${requester.fhirUser.id}` : '',
    requester.patient ?? '',
    requester.organization ?? '',
    requester.scope ?? '',
    [...requester.clearance].sort(),
  ]);
}

/** A short digest of requesterKey, for page tokens (which the requester can read). */
export function requesterHash(requester: Requester): string {
  return createHash('sha256').update(requesterKey(requester)).digest('base64url').slice(0, 16);
}
