import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

/** The IssueType codes of the R4 spec (http://hl7.org/fhir/issue-type) that this server emits. */
export type IssueCode = OperationOutcomeIssue['code'];
export type IssueSeverity = OperationOutcomeIssue['severity'];

/**
 * An error that ends a FHIR interaction: an HTTP status with the OperationOutcome that explains it.
 * Handlers throw it; the HTTP layer and the Bundle processor turn it into a response entry.
 */
export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: OperationOutcome,
  ) {
    super(outcome.issue?.map((i) => i.details?.text ?? i.diagnostics ?? i.code).join('; ') ?? 'error');
  }
}

export function issue(
  severity: IssueSeverity,
  code: IssueCode,
  text: string,
  expression?: string | string[],
): OperationOutcomeIssue {
  const result: OperationOutcomeIssue = { severity, code, details: { text } };
  if (expression !== undefined) result.expression = Array.isArray(expression) ? expression : [expression];
  return result;
}

export function outcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

/** An OperationOutcome that reports success (for Prefer: return=OperationOutcome and $validate). */
export function allOk(text = 'All OK'): OperationOutcome {
  return outcome([issue('information', 'informational', text)]);
}

function error(status: number, code: IssueCode, text: string, expression?: string | string[]): FhirError {
  return new FhirError(status, outcome([issue('error', code, text, expression)]));
}

export const badRequest = (text: string, expression?: string | string[]) => error(400, 'invalid', text, expression);
export const notFound = (text: string, expression?: string | string[]) => error(404, 'not-found', text, expression);
export const forbidden = (text: string) => error(403, 'forbidden', text);
export const gone = (text: string, expression?: string | string[]) => error(410, 'deleted', text, expression);
export const methodNotAllowed = (text: string) => error(405, 'not-supported', text);
export const notAcceptable = (text: string) => error(406, 'not-supported', text);
export const conflict = (text: string, expression?: string) => error(409, 'conflict', text, expression);
export const preconditionFailed = (text: string, expression?: string) => error(412, 'conflict', text, expression);
export const tooLarge = (text: string) => error(413, 'too-costly', text);
export const unsupportedMediaType = (text: string) => error(415, 'not-supported', text);
export const notSupported = (text: string, expression?: string) => error(400, 'not-supported', text, expression);
/** 422: the content is FHIR JSON but breaks a rule (validation, business rule). */
export const unprocessable = (issues: OperationOutcomeIssue[]) => new FhirError(422, outcome(issues));
export const serverError = (text: string) => error(500, 'exception', text);
/** A condition that passes by itself (commits contending, a commit taken over): the client may try again. */
export const serviceUnavailable = (text: string) => error(503, 'transient', text);
/** A read-only request whose time budget ran out (REQUEST_TIME_BUDGET_MS): answered now rather than late. */
export const timedOut = (text: string) => error(503, 'timeout', text);

/**
 * A write that lost a version race to another writer without the client having named a version
 * (no If-Match): the dispatcher runs the interaction again on the new current version.
 */
export class VersionRaceError extends FhirError {
  readonly retryable = true;
}
