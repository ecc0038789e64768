import type { CareTeam, Coding, Patient, Reference, Resource } from '@medplum/fhirtypes';
import { reviewFindings, type SubjectFinding } from '../../checks';
import { SENSITIVE_CODES } from '../../auth/labels';
import type { CurrentDocument } from '../../store/documents';
import type { Reader } from '../../store/read-view';
import { loadCompartment } from '../review/compartment';
import type { ReviewDefinitions } from '../review/definitions';
import { FINDING_KEY_SYSTEM, findingKey, type Finding } from './model';

/** What the review says about a patient today, and what is stored: the input of reconcile(). */
export interface PatientState {
  patientId: string;
  date: string;
  /** undefined when the patient is unknown or deleted: every open finding is then closed. */
  desired?: DesiredFinding[];
  stored: Finding[];
  careTeam: Reference[];
}

export interface DesiredFinding extends SubjectFinding {
  key: string;
  /** The sensitivity labels of the evidence (Part 2 and others), which the finding must carry. */
  labels: Coding[];
}

/** Runs the review `$medication-review` runs, as of `date`, with the current definitions. */
export async function evaluatePatient(
  reader: Reader,
  definitions: ReviewDefinitions,
  patientId: string,
  date: string,
): Promise<PatientState> {
  const compartment = `Patient/${patientId}`;
  const live = { compartments: compartment, deleted: { $ne: true } };
  const projection = { projection: { _id: 0, resource: 1 } };
  // The definitions are read once: a rebuild meanwhile swaps the registries, not what this review holds.
  const { classes, checks, types } = definitions;
  // All at once: the compartment is loaded before knowing whether the patient still exists, since it
  // nearly always does.
  const [patientDoc, issues, tasks, teams, compartmentResources] = await Promise.all([
    reader.findOne<CurrentDocument>('Patient', { _id: patientId }),
    reader.find<CurrentDocument>('DetectedIssue', live, projection),
    reader.find<CurrentDocument>('Task', live, projection),
    reader.find<CurrentDocument>('CareTeam', live, projection),
    loadCompartment(reader, patientId, types),
  ]);
  const stored = [...issues, ...tasks]
    .map((d) => d.resource as Finding)
    .filter((f) => f.identifier?.some((i) => i.system === FINDING_KEY_SYSTEM));
  const careTeam = careTeamMembers(
    teams.map((d) => d.resource as CareTeam),
    compartment,
  );
  if (!patientDoc || patientDoc.deleted) return { patientId, date, stored, careTeam };
  const patient = patientDoc.resource as Patient;
  const resources = [patient, ...compartmentResources];
  const byReference = new Map(resources.map((r) => [`${r.resourceType}/${r.id}`, r]));
  const desired = reviewFindings({ patient, resources, date }, classes, checks).map((f) => ({
    ...f,
    key: findingKey(patientId, f.check, f.subject),
    labels: labelsOf([patient, ...evidenceOf(f.finding).flatMap((ref) => byReference.get(ref) ?? [])]),
  }));
  return { patientId, date, desired, stored, careTeam };
}

function evidenceOf(finding: Finding): string[] {
  const refs =
    finding.resourceType === 'DetectedIssue'
      ? [...(finding.implicated ?? []), ...(finding.evidence ?? []).flatMap((e) => e.detail ?? [])]
      : [...(finding.focus ? [finding.focus] : []), ...(finding.input ?? []).flatMap((i) => i.valueReference ?? [])];
  return refs.flatMap((r) => (r.reference ? [r.reference] : []));
}

/** The sensitivity labels (src/auth/labels.ts) of the resources, once each, in a stable order. */
function labelsOf(resources: Resource[]): Coding[] {
  const labels = new Map<string, Coding>();
  for (const resource of resources) {
    for (const label of resource.meta?.security ?? []) {
      if (typeof label.code === 'string' && SENSITIVE_CODES.get(label.code) === label.system) {
        labels.set(`${label.system}|${label.code}`, { system: label.system, code: label.code });
      }
    }
  }
  return [...labels.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, c]) => c);
}

/** Members of the patient's active care teams (not the patient), once each, sorted. */
function careTeamMembers(teams: CareTeam[], compartment: string): Reference[] {
  const members = new Set<string>();
  for (const team of teams) {
    if (team.subject?.reference !== compartment) continue;
    if (team.status && team.status !== 'active' && team.status !== 'proposed') continue;
    for (const p of team.participant ?? []) {
      const ref = p.member?.reference;
      if (ref && !ref.startsWith('Patient/') && !ref.startsWith('#')) members.add(ref);
    }
  }
  return [...members].sort().map((reference) => ({ reference }));
}
