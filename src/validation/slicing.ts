import type { ElementDefinitionSlicingDiscriminator } from '@medplum/fhirtypes';
import { asList, deepEqual, isObject, matchesPattern } from './json';
import type { ProfileNode } from './profile-model';

/** One value found at a profile element, with where it was and the type its JSON key names. */
export interface Located {
  readonly value: unknown;
  readonly path: string;
  /** For choice elements the type from the key (valueQuantity → Quantity); else undefined. */
  readonly type?: string;
}

/** Checks "does this value conform to profile url", used by profile discriminators. */
export type ConformsTo = (value: unknown, url: string) => boolean;

const EXTENSION_SLICING = [{ type: 'value', path: 'url' }] as const;

/**
 * Slicing without a `slicing` element is legal for extensions (the base sets url as discriminator);
 * for other elements we have nothing to discriminate with and such slices match nothing.
 */
export function discriminatorsOf(node: ProfileNode): readonly ElementDefinitionSlicingDiscriminator[] {
  if (node.slicing?.discriminator.length) return node.slicing.discriminator;
  return node.name === 'extension' || node.name === 'modifierExtension' ? EXTENSION_SLICING : [];
}

/** Whether value belongs to slice under every discriminator (an empty discriminator list matches nothing). */
export function matchesSlice(
  slice: ProfileNode,
  item: Located,
  discriminators: readonly ElementDefinitionSlicingDiscriminator[],
  conformsTo: ConformsTo,
): boolean {
  if (discriminators.length === 0) return false;
  return discriminators.every((d) => matchesDiscriminator(slice, item, d, conformsTo));
}

function matchesDiscriminator(
  slice: ProfileNode,
  item: Located,
  d: ElementDefinitionSlicingDiscriminator,
  conformsTo: ConformsTo,
): boolean {
  const target = descend(slice, d.path);
  const actual = evaluatePath(item.value, d.path);
  switch (d.type) {
    case 'value':
    case 'pattern': {
      let expected = target?.fixed ?? target?.pattern;
      // An extension slice is usually keyed only by the extension definition it points to.
      if (expected === undefined && d.path === 'url') expected = slice.types?.[0]?.profiles[0];
      if (expected === undefined) return false;
      const isPattern = target?.fixed === undefined && target?.pattern !== undefined;
      return actual.some((a) => (isPattern ? matchesPattern(a, expected) : deepEqual(a, expected)));
    }
    case 'type': {
      const codes = target?.types?.map((t) => t.code) ?? [];
      if (d.path === '$this' && item.type) return codes.includes(item.type);
      return actual.some((a) => isObject(a) && typeof a.resourceType === 'string' && codes.includes(a.resourceType));
    }
    case 'profile': {
      const urls = target?.types?.flatMap((t) => t.profiles) ?? [];
      return urls.length > 0 && actual.some((a) => urls.some((u) => conformsTo(a, u)));
    }
    case 'exists': {
      const mustExist = (target?.min ?? 0) > 0;
      return mustExist ? actual.length > 0 : target?.max === 0 ? actual.length === 0 : true;
    }
    default:
      return false;
  }
}

/** The node under slice that a discriminator path names ($this, or dotted child names). */
function descend(slice: ProfileNode, path: string): ProfileNode | undefined {
  if (path === '$this') return slice;
  let node: ProfileNode | undefined = slice;
  for (const name of path.split('.')) {
    const bare = name.endsWith('[x]') ? name.slice(0, -3) : name;
    node = node?.children.find((c) => c.name === bare);
  }
  return node;
}

/** Evaluates a simple dotted discriminator path on JSON. */
function evaluatePath(value: unknown, path: string): unknown[] {
  if (path === '$this') return [value];
  let current: unknown[] = [value];
  for (const name of path.split('.')) {
    const next: unknown[] = [];
    for (const c of current) if (isObject(c)) next.push(...asList(c[name]));
    current = next;
  }
  return current;
}
