import type { ElementDefinition, ElementDefinitionBinding, StructureDefinition } from '@medplum/fhirtypes';
import { compileConstraint, type CompiledConstraint } from './invariants';
import { upperFirst } from './json';

/**
 * Element tables compiled from the snapshots of the base StructureDefinitions: for each type (and
 * each backbone element, which is an anonymous type) the JSON keys it allows, with cardinality,
 * types, required bindings and compiled invariants. The structure walker only does Map look-ups.
 */
export interface ChildRule {
  /** JSON name without [x]: `status`, `medication` for medication[x]. */
  readonly name: string;
  /** ElementDefinition path, e.g. `MedicationRequest.dosageInstruction`. */
  readonly path: string;
  readonly min: number;
  readonly max: number;
  /** Whether JSON carries the element as an array (base max other than 1). */
  readonly array: boolean;
  readonly choice: boolean;
  readonly typeCodes: readonly string[];
  readonly binding?: { readonly strength: ElementDefinitionBinding['strength']; readonly valueSet: string };
  readonly constraints: readonly CompiledConstraint[];
  /** For BackboneElement / Element children defined inline, and contentReference. */
  inline?: ComplexModel;
}

export interface ChildEntry {
  readonly rule: ChildRule;
  /** The concrete type of this key (for choices, the type the key names). */
  readonly type: string;
}

export interface ComplexModel {
  readonly name: string;
  readonly keys: ReadonlyMap<string, ChildEntry>;
  readonly rules: readonly ChildRule[];
  /** Invariants of the type's root element (e.g. dom-2..dom-6, or tim-* on Timing.repeat). */
  readonly constraints: readonly CompiledConstraint[];
}

const SYSTEM_TYPES: Record<string, string> = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Time': 'time',
};
const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';

/** The FHIR type code of an ElementDefinition.type (System.String on Element.id means `string`, etc.). */
export function typeCode(t: NonNullable<ElementDefinition['type']>[number]): string {
  const declared = t.extension?.find((x) => x.url === FHIR_TYPE_EXT)?.valueUrl;
  if (declared) return declared;
  return SYSTEM_TYPES[t.code] ?? t.code;
}

export function parseMax(max: string | undefined): number {
  return max === undefined || max === '*' ? Infinity : Number(max);
}

/**
 * Compiles one base StructureDefinition into its model and the models of its backbone elements.
 * `extraConstraints` maps a type profile URL (SimpleQuantity...) to its root invariants.
 */
export function buildTypeModel(
  sd: StructureDefinition,
  profileConstraints: (url: string) => readonly CompiledConstraint[],
): ComplexModel {
  const elements = sd.snapshot?.element ?? [];
  const root = elements[0];
  const byPath = new Map<string, { model: MutableModel; element: ElementDefinition }>();
  const rootModel = newModel(sd.type, compileAll(root?.constraint, root?.path ?? sd.type));
  byPath.set(root?.path ?? sd.type, { model: rootModel, element: root });
  const pendingRefs: [ChildRule, string][] = [];

  for (const element of elements.slice(1)) {
    const dot = element.path.lastIndexOf('.');
    const parent = byPath.get(element.path.slice(0, dot));
    if (!parent) continue; // a child of a non-backbone element: snapshots do not list those
    const rawName = element.path.slice(dot + 1);
    const choice = rawName.endsWith('[x]');
    const name = choice ? rawName.slice(0, -3) : rawName;
    // R4 snapshots type Resource.id as System.String; the spec (and the HL7 validator) treat it as `id`.
    const isResourceId = sd.kind === 'resource' && element.path === `${sd.type}.id`;
    const typeCodes = isResourceId ? ['id'] : (element.type ?? []).map(typeCode);
    const constraints = compileAll(element.constraint, element.path);
    for (const t of element.type ?? []) {
      for (const p of t.profile ?? []) constraints.push(...profileConstraints(p));
    }
    const rule: ChildRule = {
      name,
      path: element.path,
      min: element.min ?? 0,
      max: parseMax(element.max),
      array: parseMax(element.base?.max ?? element.max) !== 1,
      choice,
      typeCodes,
      binding:
        element.binding?.valueSet && element.binding.strength
          ? { strength: element.binding.strength, valueSet: element.binding.valueSet }
          : undefined,
      constraints,
    };
    parent.model.rules.push(rule);
    if (choice) {
      for (const code of typeCodes) parent.model.keys.set(name + upperFirst(code), { rule, type: code });
    } else {
      parent.model.keys.set(name, { rule, type: typeCodes[0] ?? 'BackboneElement' });
    }
    if (element.contentReference) {
      pendingRefs.push([rule, element.contentReference.slice(element.contentReference.indexOf('#') + 1)]);
    } else if (typeCodes.length === 1 && (typeCodes[0] === 'BackboneElement' || typeCodes[0] === 'Element')) {
      // Inline (backbone) element: its children follow in the snapshot under its path.
      const model = newModel(element.path, []);
      rule.inline = model;
      byPath.set(element.path, { model, element });
    }
  }
  for (const [rule, target] of pendingRefs) {
    rule.inline = byPath.get(target)?.model;
  }
  return rootModel;
}

interface MutableModel extends ComplexModel {
  readonly keys: Map<string, ChildEntry>;
  readonly rules: ChildRule[];
}

function newModel(name: string, constraints: CompiledConstraint[]): MutableModel {
  return { name, keys: new Map(), rules: [], constraints };
}

function compileAll(constraints: ElementDefinition['constraint'], basePath: string): CompiledConstraint[] {
  const out: CompiledConstraint[] = [];
  for (const c of constraints ?? []) {
    const compiled = compileConstraint(c, basePath);
    if (compiled) out.push(compiled);
  }
  return out;
}
