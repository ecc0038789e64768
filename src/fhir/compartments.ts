import type { Resource, SearchParameter } from '@medplum/fhirtypes';
import { compile } from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { loadR4Bundle, patientCompartmentParams } from './definitions';

type Extractor = (resource: Resource) => unknown[];

/** Matches a reference to a Patient, relative ("Patient/1") or absolute (".../Patient/1"). */
const PATIENT_REFERENCE = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

let extractors: Map<string, Extractor[]> | undefined;

/**
 * For each type in the R4 Patient CompartmentDefinition, compiled FHIRPath extractors of the search
 * parameters that place a resource in a Patient's compartment. The spec's expressions filter with
 * `where(resolve() is Patient)`; resolution needs the target, so the filter is replaced by a check of
 * the reference's type in `compartmentsOf`.
 */
function compartmentExtractors(): Map<string, Extractor[]> {
  if (extractors) return extractors;
  const parameters = (loadR4Bundle('search-parameters.json').entry ?? []).map((e) => e.resource as SearchParameter);
  extractors = new Map();
  for (const [type, codes] of patientCompartmentParams()) {
    const list: Extractor[] = [];
    for (const code of codes) {
      const definition = parameters.find((p) => p.code === code && p.base?.includes(type as never));
      const expression = definition?.expression
        ?.split('|')
        .map((part) => part.trim())
        .filter((part) => part.startsWith(`${type}.`))
        .map((part) => part.replace(/\.where\(resolve\(\) is [A-Za-z]+\)/g, ''))
        .join(' | ');
      if (!expression) continue;
      const compiled = compile(expression, r4Model);
      list.push((resource) => compiled(resource) as unknown[]);
    }
    extractors.set(type, list);
  }
  return extractors;
}

/** The Patient compartments ("Patient/123") a resource belongs to, per the R4 CompartmentDefinition. */
export function compartmentsOf(resource: Resource): string[] {
  const result = new Set<string>();
  if (resource.resourceType === 'Patient' && resource.id) result.add(`Patient/${resource.id}`);
  for (const extract of compartmentExtractors().get(resource.resourceType) ?? []) {
    for (const value of extract(resource)) {
      const reference = (value as { reference?: unknown } | null)?.reference;
      const match = typeof reference === 'string' ? PATIENT_REFERENCE.exec(reference) : null;
      if (match) result.add(`Patient/${match[1]}`);
    }
  }
  return [...result];
}
