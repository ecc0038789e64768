import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue } from '../fhir/outcome';
import type { CompiledConstraint } from './invariants';

/**
 * How a failed invariant is reported, everywhere in the validator: details.text reads
 * "Constraint failed: <key>: <human>" and `diagnostics` holds exactly the key (e.g. "dom-3"), so a
 * client can match on it without parsing text. Native checks of spec invariants (ele-1) use the same form.
 */
export function constraintIssue(
  c: Pick<CompiledConstraint, 'key' | 'human' | 'severity'>,
  expression: string,
  profileUrl?: string,
): OperationOutcomeIssue {
  const where = profileUrl ? ` (profile ${profileUrl})` : '';
  const result = issue(c.severity, 'invariant', `Constraint failed: ${c.key}: ${c.human}${where}`, expression);
  result.diagnostics = c.key;
  return result;
}

export const ELE_1 = {
  key: 'ele-1',
  human: 'All FHIR elements must have a @value or children',
  severity: 'error',
} as const;

export type Issues = OperationOutcomeIssue[];
