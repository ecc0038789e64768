import type { DetectedIssue, Task } from '@medplum/fhirtypes';
import { createHash } from 'node:crypto';

/** Business identifier of a standing finding: `<patient>|<check>|<subject>`. */
export const FINDING_KEY_SYSTEM = 'https://meds-fhir.org/fhir/finding-key';
/** The care team members of the finding's patient when it was last evaluated (the worklist's `care-team`). */
export const CARE_TEAM_EXTENSION = 'https://meds-fhir.org/fhir/StructureDefinition/finding-care-team';
/** Set by the server when the problem no longer holds: `reason` (string) and `date` (date). */
export const RESOLUTION_EXTENSION = 'https://meds-fhir.org/fhir/StructureDefinition/finding-resolution';

export type Finding = DetectedIssue | Task;

/** Open as the issue defines it: the care team's worklist. */
export function isOpen(finding: Finding): boolean {
  return finding.resourceType === 'DetectedIssue'
    ? finding.status === 'preliminary' || finding.status === 'final'
    : finding.status === 'requested' || finding.status === 'accepted' || finding.status === 'in-progress';
}

export function findingKey(patient: string, check: string, subject: string): string {
  return `${patient}|${check}|${subject}`;
}

export function keyOf(finding: Finding): string | undefined {
  return finding.identifier?.find((i) => i.system === FINDING_KEY_SYSTEM)?.value;
}

export function isResolved(finding: Finding): boolean {
  return (finding.extension ?? []).some((e) => e.url === RESOLUTION_EXTENSION);
}

/**
 * Ids are derived from the key and the occurrence (1 for the first time the problem appears, 2 when
 * it comes back after it was resolved, ...): two evaluators racing on one patient write one resource.
 */
export function findingId(key: string, occurrence: number): string {
  const base = `f-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
  return occurrence <= 1 ? base : `${base}-${occurrence}`;
}

export function occurrenceOf(finding: Finding): number {
  const match = /^f-[0-9a-f]{32}-(\d+)$/.exec(finding.id ?? '');
  return match ? Number(match[1]) : 1;
}
