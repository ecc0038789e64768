import type { CareTeam, Coding, Patient, Reference, Resource } from '@medplum/fhirtypes';
import { reviewFindings, type SubjectFinding } from '../../checks';
import { SENSITIVE_CODES } from '../../auth/labels';
import type { CurrentDocument } from '../../store/documents';
import type { Reader } from '../../store/read-view';
import { liveInCompartments, loadCompartments, MAX_COMPARTMENTS_PER_QUERY } from '../review/compartment';
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
  const { states, failed } = await evaluatePatients(reader, definitions, [patientId], date);
  if (failed.has(patientId)) throw failed.get(patientId);
  return states[0];
}

/** What evaluatePatients answers: the state of each patient reviewed, and why the others could not be. */
export interface BatchEvaluation {
  states: PatientState[];
  /** A patient whose review threw (a check failing on its data): the others' states stand. */
  failed: Map<string, unknown>;
}

/** Most patients evaluatePatients reviews together: each of its queries names them all. */
export const MAX_PATIENTS_PER_EVALUATION = MAX_COMPARTMENTS_PER_QUERY;

/**
 * evaluatePatient for several patients at once, each given the state it would be given alone: one
 * query per type for the batch (its compartment types, its current findings and care teams, and its
 * Patients), rather than a dozen per patient.
 */
export async function evaluatePatients(
  reader: Reader,
  definitions: ReviewDefinitions,
  patientIds: readonly string[],
  date: string,
): Promise<BatchEvaluation> {
  const ids = [...new Set(patientIds)];
  if (ids.length > MAX_PATIENTS_PER_EVALUATION) throw new Error('too many patients for one evaluation');
  // The definitions are read once: a rebuild meanwhile swaps the registries, not what this review holds.
  const { classes, checks, types } = definitions;
  // All at once: the compartments are loaded before knowing whether the patients still exist, since
  // they nearly always do.
  const [patients, issues, tasks, teams, compartments] = await Promise.all([
    livePatients(reader, ids),
    liveInCompartments(reader, 'DetectedIssue', ids),
    liveInCompartments(reader, 'Task', ids),
    liveInCompartments(reader, 'CareTeam', ids),
    loadCompartments(reader, ids, types),
  ]);
  const states: PatientState[] = [];
  const failed = new Map<string, unknown>();
  for (const patientId of ids) {
    const compartment = `Patient/${patientId}`;
    const stored = [...(issues.get(patientId) ?? []), ...(tasks.get(patientId) ?? [])]
      .map((r) => r as Finding)
      .filter((f) => f.identifier?.some((i) => i.system === FINDING_KEY_SYSTEM));
    const careTeam = careTeamMembers((teams.get(patientId) ?? []) as CareTeam[], compartment);
    const patient = patients.get(patientId);
    if (!patient) {
      states.push({ patientId, date, stored, careTeam });
      continue;
    }
    try {
      const resources = [patient, ...(compartments.get(patientId) ?? [])];
      const byReference = new Map(resources.map((r) => [`${r.resourceType}/${r.id}`, r]));
      const desired = reviewFindings({ patient, resources, date }, classes, checks).map((f) => ({
        ...f,
        key: findingKey(patientId, f.check, f.subject),
        labels: labelsOf([patient, ...evidenceOf(f.finding).flatMap((ref) => byReference.get(ref) ?? [])]),
      }));
      states.push({ patientId, date, desired, stored, careTeam });
    } catch (error) {
      failed.set(patientId, error);
    }
  }
  return { states, failed };
}

/**
 * The patients that exist and are not deleted. A Patient is in its own compartment, so a batch's are
 * one query on the compartments index; one not found there is looked up by _id, which is what a single
 * evaluation does, so that only the primary index decides that a patient is gone. With the decimals'
 * written text, as the read by _id gives them.
 */
async function livePatients(reader: Reader, ids: string[]): Promise<Map<string, Patient>> {
  const found = new Map<string, Patient>();
  if (ids.length > 1) {
    const listed = await liveInCompartments(reader, 'Patient', ids, true);
    for (const id of ids) {
      const own = listed.get(id)?.find((r) => r.id === id);
      if (own) found.set(id, own as Patient);
    }
  }
  const missing = ids.filter((id) => !found.has(id));
  const docs = await Promise.all(missing.map((id) => reader.findOne<CurrentDocument>('Patient', { _id: id })));
  missing.forEach((id, i) => {
    const doc = docs[i];
    if (doc && !doc.deleted) found.set(id, doc.resource as Patient);
  });
  return found;
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
