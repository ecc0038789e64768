import type { Reference } from '@medplum/fhirtypes';
import type { Finding } from './review';

export const CHECKS_SYSTEM = 'https://meds-fhir.org/fhir/CodeSystem/medication-checks';

/** Readable names of the shipped checks (checks/*.json); a runtime check shows its code's display. */
export const CHECK_TITLES: Record<string, string> = {
  'late-refill': 'Late refill',
  'pdc-below-threshold': 'PDC below 80%',
  'new-start-no-follow-up': 'New start without follow-up',
  'overdue-follow-up': 'Overdue follow-up',
  'opioid-benzodiazepine': 'Opioid with benzodiazepine',
  'buprenorphine-naltrexone': 'Buprenorphine with naltrexone',
  'high-mme': 'High opioid dosage (MME)',
  'missed-doses': 'Missed doses',
  'monitoring-gap-uds': 'Drug screen overdue',
};

/** Combinations of active medications that matter together (the page lists them on their own). */
export const COMBINATION_CHECKS = new Set(['opioid-benzodiazepine', 'buprenorphine-naltrexone']);

export function checkOf(f: Finding): { code: string; title: string } {
  const coding = f.code?.coding?.find((c) => c.system === CHECKS_SYSTEM) ?? f.code?.coding?.[0];
  const code = coding?.code ?? 'unknown';
  return { code, title: CHECK_TITLES[code] ?? coding?.display ?? code };
}

export function findingText(f: Finding): string {
  return f.resourceType === 'DetectedIssue' ? (f.detail ?? '') : (f.description ?? '');
}

/** Clinical order (the server's priority-rank): stat 4, asap 3, urgent 2, routine 1; high 3, moderate 2, low 1. */
export function priorityRank(f: Finding): number {
  if (f.resourceType === 'Task') return { stat: 4, asap: 3, urgent: 2, routine: 1 }[f.priority ?? 'routine'] ?? 1;
  return { high: 3, moderate: 2, low: 1 }[f.severity ?? 'low'] ?? 1;
}

export function priorityText(f: Finding): string {
  return f.resourceType === 'Task' ? (f.priority ?? 'routine') : (f.severity ?? 'low');
}

/** When the finding was raised. */
export function raisedOn(f: Finding): string | undefined {
  return (f.resourceType === 'Task' ? f.authoredOn : f.identifiedDateTime)?.slice(0, 10);
}

export function isAcknowledged(f: Finding): boolean {
  if (f.resourceType === 'Task') return f.status === 'accepted' || f.status === 'in-progress';
  return f.status === 'final' || (f.mitigation?.length ?? 0) > 0;
}

export function patientOf(f: Finding): string | undefined {
  const ref = f.resourceType === 'Task' ? f.for?.reference : f.patient?.reference;
  return ref?.replace(/^.*Patient\//, '');
}

/** The resources a finding points at as its evidence (references, relative `Type/id`). */
export function evidenceOf(f: Finding): string[] {
  const refs: (Reference | undefined)[] = [];
  if (f.resourceType === 'DetectedIssue') {
    refs.push(...(f.implicated ?? []));
    for (const e of f.evidence ?? []) refs.push(...(e.detail ?? []));
  } else {
    refs.push(f.focus);
    for (const i of f.input ?? []) refs.push(i.valueReference);
  }
  return refs
    .map((r) => r?.reference?.replace(/^.*\/(\w+\/[^/]+)$/, '$1'))
    .filter((r): r is string => !!r && /^\w+\/[^/]+$/.test(r));
}
