/**
 * Which of the scopes a client asks for it may be given, by the SMART App Launch 2 scope grammar
 * (scopes-and-launch-context): `context/Type.permissions[?query]`, v1 `.read`/`.write`/`.*` read as
 * the v2 permissions the SMART 2 page maps them to. Only as much parsing as narrowing a request needs;
 * the authorization decision reads the granted scopes itself.
 */

/** Scopes that name no resource type; SECURITY.md accepts them and they grant nothing by themselves. */
export const CONTEXT_SCOPES = new Set(['openid', 'fhirUser', 'launch/patient', 'offline_access']);

const PERMISSION_ORDER = ['c', 'r', 'u', 'd', 's'];
const V1_PERMISSIONS: Record<string, string> = { read: 'rs', write: 'cud', '*': 'cruds' };
const RESOURCE_SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]*)\.(read|write|\*|c?r?u?d?s?)(?:\?(.+))?$/;

export interface ResourceScope {
  context: string;
  /** A resource type or `*`. */
  type: string;
  permissions: Set<string>;
  /** The query of a query-restricted v2 scope, as written. */
  query?: string;
}

export function parseResourceScope(scope: string): ResourceScope | undefined {
  const match = RESOURCE_SCOPE.exec(scope);
  if (!match || !match[3]) return undefined;
  const [, context, type, written, query] = match;
  const v1 = V1_PERMISSIONS[written];
  // v1 scopes had no query restrictions.
  if (v1 && query !== undefined) return undefined;
  return { context, type, permissions: new Set(v1 ?? written), query };
}

/** True for a scope a client registration may list. */
export function isKnownScope(scope: string): boolean {
  return CONTEXT_SCOPES.has(scope) || parseResourceScope(scope) !== undefined;
}

function formatResourceScope(scope: ResourceScope): string {
  const permissions = PERMISSION_ORDER.filter((p) => scope.permissions.has(p)).join('');
  return `${scope.context}/${scope.type}.${permissions}${scope.query === undefined ? '' : `?${scope.query}`}`;
}

/** What both scopes allow, or undefined when that is nothing (or cannot be written as one scope). */
function intersect(requested: ResourceScope, allowed: ResourceScope): ResourceScope | undefined {
  if (requested.context !== allowed.context) return undefined;
  let type: string;
  if (requested.type === '*') type = allowed.type;
  else if (allowed.type === '*' || allowed.type === requested.type) type = requested.type;
  else return undefined;
  const permissions = new Set([...requested.permissions].filter((p) => allowed.permissions.has(p)));
  if (!permissions.size) return undefined;
  // Two different queries would have to hold together; one scope cannot say that, so nothing is granted.
  if (requested.query !== undefined && allowed.query !== undefined && requested.query !== allowed.query) {
    return undefined;
  }
  return { context: requested.context, type, permissions, query: requested.query ?? allowed.query };
}

function sameScope(a: ResourceScope, b: ResourceScope): boolean {
  return (
    a.context === b.context &&
    a.type === b.type &&
    a.query === b.query &&
    a.permissions.size === b.permissions.size &&
    [...a.permissions].every((p) => b.permissions.has(p))
  );
}

/**
 * The scopes to grant: each requested scope narrowed to what the registration allows. A request the
 * registration covers is granted as written (a v1 scope stays v1); one it covers only in part is
 * granted as that part, in v2 spelling (`system/*.cruds` with `system/Observation.rs` allowed gives
 * `system/Observation.rs`); one it does not cover at all is dropped.
 */
export function grantScopes(requested: readonly string[], allowed: readonly string[]): string[] {
  const allowedResourceScopes = allowed.map(parseResourceScope).filter((s): s is ResourceScope => s !== undefined);
  const granted: string[] = [];
  const add = (scope: string) => {
    if (!granted.includes(scope)) granted.push(scope);
  };
  for (const scope of requested) {
    const parsed = parseResourceScope(scope);
    if (!parsed) {
      if (CONTEXT_SCOPES.has(scope) && allowed.includes(scope)) add(scope);
      continue;
    }
    const parts = allowedResourceScopes
      .map((allowedScope) => intersect(parsed, allowedScope))
      .filter((s): s is ResourceScope => s !== undefined);
    if (parts.some((part) => sameScope(part, parsed))) add(scope);
    else for (const part of parts) add(formatResourceScope(part));
  }
  return granted;
}

/** Splits an OAuth scope string (RFC 6749 §3.3: space-delimited). */
export function splitScopes(value: string): string[] {
  return value.split(' ').filter(Boolean);
}
