import { FhirError, outcome } from '../../fhir/outcome';

/** An error in one Bundle entry, restated so that it names the entry (Bundle.entry[i]) and keeps its status. */
export function entryError(index: number, error: FhirError): FhirError {
  const issues = (error.outcome.issue ?? []).map((i) => ({
    ...i,
    details: { ...i.details, text: `Bundle.entry[${index}]: ${i.details?.text ?? i.diagnostics ?? i.code}` },
    expression: [`Bundle.entry[${index}]`, ...(i.expression ?? [])],
  }));
  return new FhirError(error.status, outcome(issues));
}
