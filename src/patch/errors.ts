import { badRequest, FhirError, issue, unprocessable } from '../fhir/outcome';

/**
 * The two ways a patch fails (RFC 5789 section 2.2): a patch document that is not well formed is
 * 400; a well-formed patch that cannot be applied to the resource as it is now is 422.
 */
export function malformedPatch(text: string, expression: string[]): FhirError {
  return badRequest(text, expression);
}

export function patchNotApplicable(text: string, expression: string[]): FhirError {
  return unprocessable([issue('error', 'processing', text, expression)]);
}
