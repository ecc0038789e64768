import { type UserInvocationTable, util } from 'fhirpath';

/**
 * getResourceKey() and getReferenceKey([type]) of SQL-on-FHIR v2, as fhirpath.js user functions. A
 * resource's key is its id and a reference's key the id it points at, so that the two join: the
 * spec leaves keys opaque, and the plain id is what an analyst expects to see in a table.
 */
const REFERENCE = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

interface TypeInfoLike {
  name?: string;
}

function plain(node: unknown): unknown {
  return util.valData(node) as unknown;
}

function resourceKey(inputs: unknown[]): string[] {
  const keys: string[] = [];
  for (const node of inputs) {
    const value = plain(node) as { resourceType?: unknown; id?: unknown } | undefined;
    if (value && typeof value.resourceType === 'string' && typeof value.id === 'string') keys.push(value.id);
  }
  return keys;
}

function referenceKey(inputs: unknown[], type?: TypeInfoLike): string[] {
  const keys: string[] = [];
  for (const node of inputs) {
    const value = plain(node) as { reference?: unknown } | undefined;
    if (!value || typeof value.reference !== 'string') continue;
    const match = REFERENCE.exec(value.reference);
    if (!match) continue;
    if (type?.name && match[1] !== type.name) continue;
    keys.push(match[2]);
  }
  return keys;
}

/**
 * join() as the SQL-on-FHIR suite expects it: the values' strings between separators, and '' (not an
 * empty collection) when there are none.
 */
function join(inputs: unknown[], separator?: string): string {
  return inputs.map((n) => String(plain(n))).join(separator ?? '');
}

export const KEY_FUNCTIONS: UserInvocationTable = {
  getResourceKey: { fn: (inputs: unknown[]) => resourceKey(inputs), arity: { 0: [] }, internalStructures: true },
  join: { fn: (inputs: unknown[], separator?: string) => [join(inputs, separator)], arity: { 0: [], 1: ['String'] } },
  getReferenceKey: {
    fn: (inputs: unknown[], type?: TypeInfoLike) => referenceKey(inputs, type),
    arity: { 0: [], 1: ['TypeSpecifier'] },
    internalStructures: true,
  },
} as UserInvocationTable;
