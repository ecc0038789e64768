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
  const descent = descend(slice, d.path);
  const target = descent.nodes[0];
  const actual = evaluatePath(item.value, d.path);
  switch (d.type) {
    case 'value':
    case 'pattern': {
      const { expected } = descent;
      if (expected.length === 0) return false;
      return actual.some((a) => expected.some((e) => (e.pattern ? matchesPattern(a, e.value) : deepEqual(a, e.value))));
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

/**
 * The nodes under slice that a discriminator path names ($this, or dotted child names). Where the
 * path crosses an element the slice slices further (bp's component:SystolicBP.code.coding:SBPCode),
 * the values its own slices fix count too: the first node is the element itself, then those of its slices.
 */
function descend(slice: ProfileNode, path: string): Descent {
  // Profiles are compiled once: so is the walk down each of their discriminator paths.
  let byPath = descents.get(slice);
  if (!byPath) descents.set(slice, (byPath = new Map()));
  let found = byPath.get(path);
  if (!found) {
    const nodes = walkDown(slice, path);
    const expected = nodes.flatMap((t): Expected[] =>
      t.fixed !== undefined
        ? [{ value: t.fixed, pattern: false }]
        : t.pattern !== undefined
          ? [{ value: t.pattern, pattern: true }]
          : [],
    );
    // An extension slice is usually keyed only by the extension definition it points to.
    const url = path === 'url' ? slice.types?.[0]?.profiles[0] : undefined;
    if (expected.length === 0 && url !== undefined) expected.push({ value: url, pattern: false });
    byPath.set(path, (found = { nodes, expected }));
  }
  return found;
}

/** A value a value or pattern discriminator expects, and whether as a pattern. */
interface Expected {
  readonly value: unknown;
  readonly pattern: boolean;
}

interface Descent {
  readonly nodes: ProfileNode[];
  readonly expected: Expected[];
}

const descents = new WeakMap<ProfileNode, Map<string, Descent>>();

function walkDown(slice: ProfileNode, path: string): ProfileNode[] {
  if (path === '$this') return [slice];
  let nodes: ProfileNode[] = [slice];
  for (const name of path.split('.')) {
    const bare = name.endsWith('[x]') ? name.slice(0, -3) : name;
    nodes = nodes.flatMap((n) => {
      const child = n.children.find((c) => c.name === bare);
      return child ? [child, ...child.slices.filter((s) => s.name === child.name)] : [];
    });
  }
  return nodes;
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
