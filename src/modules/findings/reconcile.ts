import type { Coding, Extension, Reference, Task } from '@medplum/fhirtypes';
import { SENSITIVE_CODES } from '../../auth/labels';
import { sameContent } from '../../rest/write';
import {
  CARE_TEAM_EXTENSION,
  FINDING_KEY_SYSTEM,
  findingId,
  isOpen,
  isResolved,
  keyOf,
  occurrenceOf,
  RESOLUTION_EXTENSION,
  type Finding,
} from './model';
import type { DesiredFinding, PatientState } from './evaluate';

/** A finding to store: `previous` is the stored version it replaces (written with If-Match). */
export interface FindingWrite {
  resource: Finding;
  previous?: Finding;
}

/** The elements the server owns on a finding; everything else (status once open, notes, owner, mitigation) is the care team's. */
const SERVER_OWNED: Record<Finding['resourceType'], string[]> = {
  DetectedIssue: ['code', 'severity', 'patient', 'detail', 'implicated', 'evidence'],
  Task: ['intent', 'priority', 'code', 'description', 'for', 'focus', 'input'],
};

/**
 * What to write so the stored findings say what the review says, one finding per key:
 * - the problem holds and its latest finding is open: refresh what the server owns (evidence, detail),
 *   never the status, so an acknowledged finding stays acknowledged;
 * - it holds and there is no finding, or the latest was resolved by the server: a new finding;
 * - it holds and the care team closed the latest one themselves: nothing (no duplicate);
 * - it no longer holds: the open finding is closed (reason and date kept in it), and one the team
 *   had closed is marked resolved, so that a problem that comes back opens a new finding.
 * Versions whose content would not change are not written.
 */
export function reconcile(state: PatientState): FindingWrite[] {
  const latest = latestByKey(state.stored);
  const writes: FindingWrite[] = [];
  const desiredKeys = new Set<string>();
  for (const desired of state.desired ?? []) {
    if (desiredKeys.has(desired.key)) continue;
    desiredKeys.add(desired.key);
    const current = latest.get(desired.key);
    if (current && isOpen(current)) {
      const refreshed = refresh(current, desired, state.careTeam);
      if (!sameContent(current, refreshed)) writes.push({ resource: refreshed, previous: current });
    } else if (!current || isResolved(current)) {
      const occurrence = current ? occurrenceOf(current) + 1 : 1;
      writes.push({ resource: created(desired, state, findingId(desired.key, occurrence)) });
    }
  }
  for (const [key, current] of latest) {
    if (desiredKeys.has(key) || isResolved(current)) continue;
    const reason =
      state.desired === undefined
        ? `The patient is no longer in the record (evaluated ${state.date})`
        : `The problem no longer holds as of ${state.date}`;
    writes.push({ resource: resolved(current, reason, state.date), previous: current });
  }
  return writes;
}

function latestByKey(stored: Finding[]): Map<string, Finding> {
  const latest = new Map<string, Finding>();
  for (const finding of stored) {
    const key = keyOf(finding);
    if (!key) continue;
    const seen = latest.get(key);
    if (!seen || occurrenceOf(finding) > occurrenceOf(seen)) latest.set(key, finding);
  }
  return latest;
}

function created(desired: DesiredFinding, state: PatientState, id: string): Finding {
  const { id: _reviewId, identifier: _reviewIdentifier, ...content } = desired.finding;
  const finding = {
    ...content,
    id,
    ...(desired.labels.length ? { meta: { security: desired.labels } } : {}),
    identifier: [{ system: FINDING_KEY_SYSTEM, value: desired.key }],
  } as Finding;
  setCareTeam(finding, state.careTeam);
  return finding;
}

function refresh(current: Finding, desired: DesiredFinding, careTeam: Reference[]): Finding {
  const next = { ...current } as Record<string, unknown>;
  const source = desired.finding as unknown as Record<string, unknown>;
  for (const element of SERVER_OWNED[current.resourceType]) {
    if (source[element] === undefined) delete next[element];
    else next[element] = source[element];
  }
  const finding = next as unknown as Finding;
  finding.meta = withLabels(current.meta, desired.labels);
  if (!finding.meta) delete finding.meta;
  setCareTeam(finding, careTeam);
  return finding;
}

function resolved(current: Finding, reason: string, date: string): Finding {
  const resolution: Extension = {
    url: RESOLUTION_EXTENSION,
    extension: [
      { url: 'reason', valueString: reason },
      { url: 'date', valueDate: date },
    ],
  };
  const next = { ...current, extension: [...(current.extension ?? []), resolution] } as Finding;
  // A finding the care team had closed keeps their status; only the server's own open ones are closed.
  if (!isOpen(current)) return next;
  if (next.resourceType === 'DetectedIssue') {
    // R4 binds DetectedIssue.status to ObservationStatus: a finding that no longer holds is withdrawn,
    // `cancelled` (R5's `mitigated` is not an R4 code); the resolution extension says why and when.
    (next as { status?: string }).status = 'cancelled';
  } else {
    const task = next as Task;
    // Work the team had taken up is completed by the change in the record; untouched work is cancelled.
    task.status = current.status === 'requested' ? 'cancelled' : 'completed';
    task.statusReason = { text: reason };
    task.lastModified = date;
  }
  return next;
}

/** The finding's labels: the sensitivity labels of its evidence, and whatever else it had been given. */
function withLabels(meta: Finding['meta'], labels: Coding[]): Finding['meta'] {
  const { versionId: _v, lastUpdated: _l, ...rest } = meta ?? {};
  const kept = (rest.security ?? []).filter((c) => !(c.code && SENSITIVE_CODES.get(c.code) === c.system));
  const security = [...kept, ...labels];
  const { security: _s, ...others } = rest;
  const result = { ...others, ...(security.length ? { security } : {}) };
  return Object.keys(result).length ? result : undefined;
}

function setCareTeam(finding: Finding, careTeam: Reference[]): void {
  const others = (finding.extension ?? []).filter((e) => e.url !== CARE_TEAM_EXTENSION);
  const team = careTeam.map((valueReference) => ({ url: CARE_TEAM_EXTENSION, valueReference }));
  const extension = [...others, ...team];
  if (extension.length) finding.extension = extension;
  else delete finding.extension;
}
