import type {
  ElementDefinition,
  ElementDefinitionBinding,
  ElementDefinitionSlicingDiscriminator,
  StructureDefinition,
} from '@medplum/fhirtypes';
import { compileConstraint, isNativeEle1, type CompiledConstraint } from './invariants';
import { choiceEntry, type JsonObject } from './json';
import { typeCode, parseMax } from './element-model';

/**
 * A profile compiled from its differential into a tree of the rules it adds to its base.
 *
 * Design choice: profiles in profiles/ are differential-only. We do not generate snapshots: the base
 * resource is always validated against the R4 base definition first, so a profile only needs to
 * contribute what its differential says (and its base profile's, when it derives from another of our
 * profiles). Element ids (`Observation.code.coding:loinc.system`, `Observation.value[x]:valueInteger`)
 * define the tree: each segment is a child element, `:name` a slice of it.
 */
export interface ProfileNode {
  readonly id: string;
  /** ElementDefinition-style path for FHIRPath evaluation (`Observation.component.value[x]`). */
  readonly path: string;
  /** JSON name without [x]; for a choice type slice such as value[x]:valueInteger, the full key. */
  readonly name: string;
  readonly choice: boolean;
  readonly sliceName?: string;
  min?: number;
  max?: number;
  types?: ProfileType[];
  fixed?: unknown;
  pattern?: unknown;
  binding?: { readonly strength: ElementDefinitionBinding['strength']; readonly valueSet: string };
  constraints: CompiledConstraint[];
  readonly children: ProfileNode[];
  slicing?: { readonly discriminator: readonly ElementDefinitionSlicingDiscriminator[]; readonly rules: string };
  readonly slices: ProfileNode[];
}

export interface ProfileType {
  readonly code: string;
  readonly profiles: readonly string[];
  readonly targetProfiles: readonly string[];
}

export interface CompiledProfile {
  readonly url: string;
  readonly type: string;
  /** Another profile this one constrains further (not the base definition of its type), or undefined. */
  readonly baseProfile?: string;
  readonly root: ProfileNode;
  readonly definition: StructureDefinition;
}

export const CORE_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

export class ProfileError extends Error {}

export function compileProfile(sd: StructureDefinition): CompiledProfile {
  if (!sd.url || !sd.type) throw new ProfileError('A profile needs a url and a type');
  if (sd.derivation !== 'constraint') {
    throw new ProfileError(`StructureDefinition ${sd.url}: only constraint profiles are supported`);
  }
  const elements = sd.differential?.element ?? sd.snapshot?.element;
  if (!elements) throw new ProfileError(`StructureDefinition ${sd.url} has no differential`);
  const root = newNode(sd.type, sd.type, sd.type, false);
  for (const element of elements) {
    const node = locate(root, element, sd);
    applyElement(node, element);
  }
  const base = sd.baseDefinition;
  return {
    url: sd.url,
    type: sd.type,
    // A profile of a profile (bodyweight of vitalsigns, both core): the base's rules apply too.
    baseProfile: base && base !== `${CORE_PREFIX}${sd.type}` ? base : undefined,
    root,
    definition: sd,
  };
}

function newNode(id: string, path: string, name: string, choice: boolean, sliceName?: string): ProfileNode {
  return { id, path, name, choice, sliceName, constraints: [], children: [], slices: [] };
}

/** Finds or creates the node an element id designates. */
function locate(root: ProfileNode, element: ElementDefinition, sd: StructureDefinition): ProfileNode {
  const id = element.id ?? element.path;
  const segments = id.split('.');
  if (segments[0] !== sd.type) throw new ProfileError(`${sd.url}: element ${id} is not under ${sd.type}`);
  let node = root;
  let path = sd.type;
  for (const segment of segments.slice(1)) {
    const [rawName, sliceName] = segment.split(':');
    path = `${path}.${rawName}`;
    const choice = rawName.endsWith('[x]');
    const name = choice ? rawName.slice(0, -3) : rawName;
    let child = node.children.find((c) => c.name === name && c.choice === choice);
    if (!child) {
      child = newNode(`${node.id}.${rawName}`, path, name, choice);
      node.children.push(child);
    }
    node = child;
    if (sliceName) {
      let slice = node.slices.find((s) => s.sliceName === sliceName);
      if (!slice) {
        // value[x]:valueInteger names the choice's Integer form; it behaves as an element of its own.
        const typeSlice = choice && sliceName.startsWith(name) && sliceName.length > name.length;
        slice = newNode(`${node.id}:${sliceName}`, path, typeSlice ? sliceName : name, false, sliceName);
        node.slices.push(slice);
      }
      node = slice;
    }
  }
  return node;
}

function applyElement(node: ProfileNode, element: ElementDefinition): void {
  if (element.min !== undefined) node.min = element.min;
  if (element.max !== undefined) node.max = parseMax(element.max);
  if (element.type?.length) {
    node.types = element.type.map((t) => ({
      code: typeCode(t),
      profiles: t.profile ?? [],
      targetProfiles: t.targetProfile ?? [],
    }));
  }
  const raw = element as unknown as JsonObject;
  const fixed = choiceEntry(raw, 'fixed');
  if (fixed) node.fixed = fixed[1];
  const pattern = choiceEntry(raw, 'pattern');
  if (pattern) node.pattern = pattern[1];
  if (element.binding?.valueSet && element.binding.strength) {
    node.binding = { strength: element.binding.strength, valueSet: element.binding.valueSet };
  }
  for (const c of element.constraint ?? []) {
    if (isNativeEle1(c)) continue;
    const compiled = compileConstraint(c, element.path);
    if (compiled) node.constraints.push(compiled);
  }
  if (element.slicing) {
    node.slicing = { discriminator: element.slicing.discriminator ?? [], rules: element.slicing.rules ?? 'open' };
  }
}
