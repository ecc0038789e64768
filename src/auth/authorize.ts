import { forbidden } from '../fhir/outcome';
import type { Interaction, OperationHandler } from '../rest/context';
import type { AccessPolicy } from './access-policy';
import { grantsFor, type Permission } from './scopes';

/**
 * Types whose resources change what the server does for everyone (profiles, search parameters,
 * terminology, the checks and measures): a `patient/` scope never writes them.
 */
export const CONFORMANCE_TYPES: ReadonlySet<string> = new Set([
  'StructureDefinition',
  'SearchParameter',
  'ValueSet',
  'CodeSystem',
  'ConceptMap',
  'PlanDefinition',
  'ActivityDefinition',
  'Measure',
  'Library',
  'OperationDefinition',
  'CompartmentDefinition',
  'ImplementationGuide',
  'Subscription',
  'SubscriptionTopic',
]);

const INTERACTION_PERMISSION: Partial<Record<Interaction['kind'], Permission>> = {
  read: 'r',
  vread: 'r',
  'history-instance': 'r',
  'search-type': 's',
  'history-type': 's',
  create: 'c',
  update: 'u',
  patch: 'u',
  delete: 'd',
};

const PERMISSION_NAMES: Record<Permission, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

function refuse(permission: Permission, type: string): never {
  throw forbidden(`The token's scopes do not grant ${PERMISSION_NAMES[permission]} (${permission}) on ${type}`);
}

/** A write of `type` by the requester's scopes: `permission` granted, and not by a `patient/` scope alone for conformance types. */
export function authorizeWrite(policy: AccessPolicy, type: string, permission: Permission): void {
  if (policy.requester.unrestricted) return;
  const grants = grantsFor(policy.requester.grants, type, permission);
  if (!grants.length) refuse(permission, type);
  if (CONFORMANCE_TYPES.has(type) && !grants.some((g) => g.context !== 'patient')) {
    throw forbidden(`${type} changes what the server does for everyone: writing it needs a system/ or user/ scope`);
  }
}

/**
 * The gate before a handler runs: the interaction must be granted on its type at all (403 otherwise).
 * What it may see or change within the type is decided by the policy's filters and write checks.
 */
export function authorizeInteraction(
  policy: AccessPolicy,
  interaction: Interaction,
  operation?: OperationHandler,
): void {
  if (policy.requester.unrestricted) return;
  const { kind, resourceType } = interaction;
  switch (kind) {
    case 'capabilities':
    case 'batch':
    case 'transaction':
      return; // Nothing by itself; each Bundle entry is authorized on its own.
    case 'search-system':
    case 'history-system':
      if (!policy.requester.grants.some((g) => g.permissions.has('s'))) refuse('s', 'any type');
      return;
    case 'operation': {
      // An operation the server does not have is answered 404 by the router, alike for everyone.
      if (!operation) return;
      const requires = operation.requires;
      const type = requires.type ?? resourceType;
      if (!type) {
        if (!policy.requester.grants.some((g) => requires.permissions.some((p) => g.permissions.has(p)))) {
          refuse(requires.permissions[0], 'any type');
        }
        return;
      }
      if (!requires.permissions.some((p) => policy.allows(type, p))) refuse(requires.permissions[0], type);
      return;
    }
    default: {
      const permission = INTERACTION_PERMISSION[kind];
      if (!permission || !resourceType) return;
      if (permission === 'c' || permission === 'u' || permission === 'd')
        authorizeWrite(policy, resourceType, permission);
      else if (!policy.allows(resourceType, permission)) refuse(permission, resourceType);
    }
  }
}
