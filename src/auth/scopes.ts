/**
 * SMART on FHIR scopes (App Launch 2.x, "Scopes and Launch Context"): v2 `patient/Observation.rs`,
 * `user/*.cruds`, query-restricted `patient/Observation.rs?category=laboratory`, and v1 `.read`,
 * `.write`, `.*`, mapped as the SMART 2 page says (read = rs, write = cud, * = cruds).
 */
export type ScopeContext = 'patient' | 'user' | 'system';
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

export interface ScopeGrant {
  context: ScopeContext;
  /** A resource type, or '*' for every type. */
  resourceType: string;
  permissions: ReadonlySet<Permission>;
  /** v2 query restriction: the grant covers only resources that match these search parameters. */
  query?: [string, string][];
  /** The scope as written, for the audit and the token endpoint. */
  text: string;
}

const SCOPE = /^(patient|user|system)\/([A-Z][A-Za-z]{0,63}|\*)\.([a-z*]+)(?:\?(.*))?$/;
// A Map, not an object: a scope's text (`patient/*.constructor`) must not reach Object's prototype.
const V1_PERMISSIONS = new Map([
  ['read', 'rs'],
  ['write', 'cud'],
  ['*', 'cruds'],
]);
const V2_PERMISSIONS = /^c?r?u?d?s?$/;

/** Scopes that grant no data access by themselves (SECURITY.md). */
const CONTEXT_SCOPES = new Set([
  'openid',
  'fhirUser',
  'profile',
  'launch',
  'launch/patient',
  'offline_access',
  'online_access',
]);

/** One scope, or undefined when it grants nothing here (identity and launch scopes, unknown scopes). */
export function parseScope(text: string): ScopeGrant | undefined {
  if (CONTEXT_SCOPES.has(text)) return undefined;
  const match = SCOPE.exec(text);
  if (!match) return undefined;
  const [, context, resourceType, rawPermissions, rawQuery] = match;
  let letters = V1_PERMISSIONS.get(rawPermissions);
  if (letters === undefined) {
    // v1 has no query restrictions; v2 letters must be in the order c, r, u, d, s.
    if (!V2_PERMISSIONS.test(rawPermissions) || rawPermissions === '') return undefined;
    letters = rawPermissions;
  } else if (rawQuery !== undefined) {
    return undefined;
  }
  const grant: ScopeGrant = {
    context: context as ScopeContext,
    resourceType,
    permissions: new Set(letters.split('') as Permission[]),
    text,
  };
  if (rawQuery !== undefined) {
    const query = [...new URLSearchParams(rawQuery).entries()];
    if (!query.length) return undefined;
    grant.query = query;
  }
  return grant;
}

/** Every grant of a space-separated scope string. */
export function parseScopes(scope: unknown): ScopeGrant[] {
  if (typeof scope !== 'string') return [];
  return scope
    .split(/\s+/)
    .filter(Boolean)
    .flatMap((text) => parseScope(text) ?? []);
}

/**
 * Types a `*` scope does not reach: the audit trail is the record of who looked at the record, shown
 * only to a token whose scope names it (`system/AuditEvent.rs`, `patient/AuditEvent.rs`: a patient's
 * own accounting of disclosures), never to one granted "everything" for clinical work.
 */
export const NAMED_SCOPE_TYPES: ReadonlySet<string> = new Set(['AuditEvent']);

/** Whether a grant is about `type` at all (its own type, or `*` for any type a wildcard reaches). */
export function grantCovers(grant: ScopeGrant, type: string): boolean {
  return grant.resourceType === type || (grant.resourceType === '*' && !NAMED_SCOPE_TYPES.has(type));
}

/** The grants that allow `permission` on `type`. */
export function grantsFor(grants: readonly ScopeGrant[], type: string, permission: Permission): ScopeGrant[] {
  return grants.filter((g) => grantCovers(g, type) && g.permissions.has(permission));
}
