import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';
import { loadR4Bundle } from '../fhir/definitions';

/**
 * What FHIRPath Patch needs to know about an element to write JSON: whether it is an array, whether
 * it is a choice (valueQuantity, deceasedBoolean), and which type path its children live under.
 */
export interface PatchElement {
  /** The element's name without [x]. */
  readonly name: string;
  readonly array: boolean;
  readonly choice: boolean;
  readonly types: readonly string[];
  /**
   * Where the children of a value of this element are defined: the element's own path for backbone
   * elements, the contentReference target (Questionnaire.item.item → Questionnaire.item), or the type.
   */
  readonly childPath: string | undefined;
}

let table: Map<string, PatchElement> | undefined;

/** Element paths of every base type and resource, from the R4 snapshots (parsed once, shared with validation). */
function elements(): Map<string, PatchElement> {
  if (table) return table;
  table = new Map();
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    for (const entry of loadR4Bundle(file).entry ?? []) {
      const sd = entry.resource as StructureDefinition | undefined;
      if (sd?.resourceType !== 'StructureDefinition' || sd.kind === 'logical') continue;
      // Only the base definitions: constraint profiles (SimpleQuantity...) would overwrite their base's paths.
      if (sd.derivation === 'constraint') continue;
      for (const element of sd.snapshot?.element?.slice(1) ?? []) addElement(table, element);
    }
  }
  return table;
}

function addElement(map: Map<string, PatchElement>, element: ElementDefinition): void {
  const choice = element.path.endsWith('[x]');
  const path = choice ? element.path.slice(0, -3) : element.path;
  const name = path.slice(path.lastIndexOf('.') + 1);
  const types = (element.type ?? []).map((t) => t.code);
  let childPath: string | undefined;
  if (element.contentReference) childPath = element.contentReference.slice(element.contentReference.indexOf('#') + 1);
  else if (types.length === 1 && (types[0] === 'BackboneElement' || types[0] === 'Element')) childPath = path;
  else if (types.length === 1) childPath = types[0];
  map.set(path, { name, array: element.max !== '1' && element.max !== '0', choice, types, childPath });
}

/**
 * The element `name` of a node whose model path is `typePath` (fhirpath.js's ResourceNode.path:
 * "Patient", "Patient.contact", "HumanName", "date"). `name` may be a choice's base name (deceased)
 * or a typed one (deceasedBoolean); the second result is the type the name fixes, if any.
 */
export function findElement(typePath: string, name: string): { element: PatchElement; type?: string } | undefined {
  const direct = elements().get(`${typePath}.${name}`);
  if (direct) return { element: direct };
  // A typed choice name: try each split before an upper-case letter (multipleBirth|Integer).
  for (let i = 1; i < name.length; i++) {
    if (!/[A-Z]/.test(name[i])) continue;
    const choice = elements().get(`${typePath}.${name.slice(0, i)}`);
    const type = choice?.choice ? choice.types.find((t) => upperFirst(t) === name.slice(i)) : undefined;
    if (choice && type) return { element: choice, type };
  }
  return undefined;
}

export function upperFirst(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** FHIR primitive type names start with a lower-case letter (string, dateTime, xhtml); complex ones do not. */
export function isPrimitiveType(type: string | null | undefined): boolean {
  return !!type && /^[a-z]/.test(type);
}
