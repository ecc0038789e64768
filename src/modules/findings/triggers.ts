import type { PlanDefinition, Resource, ValueSet } from '@medplum/fhirtypes';
import { classOptionsOf } from '../../checks';
import type { Interceptor } from '../../rest/context';
import type { StagedWrite } from '../../store/journal';
import type { WorkQueue } from '../../store/work-queue';
import { isCheckDefinition, type ReviewDefinitions } from '../review/definitions';

/**
 * Types whose writes can change the findings of the patients in their compartment: what the review
 * reads (REVIEW_TYPES), appointments, and care teams (findings name the team, for the worklist).
 */
export const PATIENT_TRIGGER_TYPES = new Set([
  'MedicationRequest',
  'MedicationDispense',
  'MedicationStatement',
  'MedicationAdministration',
  'Observation',
  'CarePlan',
  'Encounter',
  'Appointment',
  'Condition',
  'CareTeam',
]);

/** The queue key that stands for every patient with active medications (expanded by a worker). */
export const ALL_PATIENTS = '*';

/**
 * Queues, in the same commit as a write, the patients whose findings it can change: so a crash after
 * the commit loses no evaluation, and a write that did not commit queues nothing. A change to what
 * every review uses (a Medication, a check PlanDefinition, a class ValueSet) queues ALL_PATIENTS.
 */
export function findingsTrigger(queue: WorkQueue, definitions: ReviewDefinitions, delayMs: number): Interceptor {
  return {
    name: 'findings-trigger',
    commitDocuments(_request, staged) {
      const due = new Date(Date.now() + delayMs);
      const patients = new Set<string>();
      let all = false;
      for (const write of staged) {
        if (PATIENT_TRIGGER_TYPES.has(write.type)) for (const id of patientsOf(write)) patients.add(id);
        else if (changesEveryReview(write, definitions)) all = true;
      }
      const keys = all ? [ALL_PATIENTS] : [...patients];
      return keys.map((key) => queue.entry(key, {}, due));
    },
  };
}

/** The patients of the version written and of the one it replaces (a subject that changed moves it). */
function patientsOf(write: StagedWrite): string[] {
  const compartments = [...(write.next.compartments ?? []), ...(write.previous?.compartments ?? [])];
  return [...new Set(compartments.filter((c) => c.startsWith('Patient/')).map((c) => c.slice('Patient/'.length)))];
}

function changesEveryReview(write: StagedWrite, definitions: ReviewDefinitions): boolean {
  if (write.type === 'Medication') return true;
  const versions = [write.next.resource, write.previous?.resource].filter((r): r is Resource => r !== undefined);
  if (write.type === 'PlanDefinition') return versions.some((r) => isCheckDefinition(r as PlanDefinition));
  if (write.type === 'ValueSet') {
    return versions.some((r) => {
      const vs = r as ValueSet;
      return classOptionsOf(vs) !== undefined || (vs.url !== undefined && !!definitions.classes.getValueSet(vs.url));
    });
  }
  return false;
}
