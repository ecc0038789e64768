import type { Medication, Resource } from '@medplum/fhirtypes';
import { referenceKey } from '../../checks/medications';
import type { CurrentDocument } from '../../store/documents';
import type { Reader } from '../../store/read-view';

/**
 * The resources a review needs: every live resource of the given types in the patient's compartment
 * (the `compartments` field the store computes at write time, indexed as {compartments: 1, ts: -1} on
 * every collection), then the Medications they reference. Medications are looked up one by one by _id,
 * which every engine answers from its primary index (our FerretDB patch pushes `_id` equality down, not
 * `_id: {$in}`); a patient references a handful of them.
 */
export async function loadCompartment(
  reader: Reader,
  patientId: string,
  types: readonly string[],
): Promise<Resource[]> {
  const compartment = `Patient/${patientId}`;
  const lists = await Promise.all(
    types.map((type) =>
      reader.find<CurrentDocument>(
        type,
        { compartments: compartment, deleted: { $ne: true } },
        { projection: { _id: 0, resource: 1 } },
      ),
    ),
  );
  // Sorted by id within each type, so the review (evidence and finding order) does not depend on the
  // engine's natural order.
  const resources = lists.flatMap((docs) => docs.map((d) => d.resource).sort(byId));
  const medications = await loadMedications(reader, medicationIds(resources));
  // Ingredients may reference other Medications (the engine follows one level of that).
  const ingredients = medicationIds(medications).filter((id) => !medications.some((m) => m.id === id));
  return [...resources, ...medications, ...(await loadMedications(reader, ingredients))];
}

/**
 * loadCompartment for many patients at once (a view's batch of Patients): one query per type for all of
 * them, then each Medication once, each patient's resources in the order loadCompartment gives them.
 */
export async function loadCompartments(
  reader: Reader,
  patientIds: readonly string[],
  types: readonly string[],
): Promise<Map<string, Resource[]>> {
  const byPatient = new Map<string, Resource[]>(patientIds.map((id) => [id, []]));
  if (!patientIds.length) return byPatient;
  const wanted = new Set(patientIds.map((id) => `Patient/${id}`));
  const lists = await Promise.all(
    types.map((type) =>
      reader.find<CurrentDocument>(
        type,
        { compartments: { $in: [...wanted] }, deleted: { $ne: true } },
        { projection: { _id: 0, resource: 1, compartments: 1 } },
      ),
    ),
  );
  for (const docs of lists) {
    const sorted = [...docs].sort((a, b) => byId(a.resource, b.resource));
    for (const doc of sorted) {
      for (const compartment of doc.compartments ?? []) {
        if (wanted.has(compartment)) byPatient.get(compartment.slice('Patient/'.length))?.push(doc.resource);
      }
    }
  }
  const all = [...byPatient.values()].flat();
  const medications = await loadMedications(reader, medicationIds(all));
  const ingredients = medicationIds(medications).filter((id) => !medications.some((m) => m.id === id));
  const known = new Map([...medications, ...(await loadMedications(reader, ingredients))].map((m) => [m.id, m]));
  for (const [id, resources] of byPatient) {
    const own = medicationIds(resources).flatMap((m) => known.get(m) ?? []);
    const nested = medicationIds(own).flatMap((m) => (own.some((o) => o.id === m) ? [] : (known.get(m) ?? [])));
    byPatient.set(id, [...resources, ...own, ...nested]);
  }
  return byPatient;
}

function byId(a: Resource, b: Resource): number {
  const x = a.id ?? '';
  const y = b.id ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Ids of the Medications referenced (not contained: those travel with their resource). */
function medicationIds(resources: readonly Resource[]): string[] {
  const ids = new Set<string>();
  const add = (reference: string | undefined) => {
    if (!reference || reference.startsWith('#')) return;
    const key = referenceKey(reference);
    if (key?.startsWith('Medication/')) ids.add(key.slice('Medication/'.length));
  };
  for (const r of resources) {
    if ('medicationReference' in r) add(r.medicationReference?.reference);
    if (r.resourceType === 'Medication') for (const i of r.ingredient ?? []) add(i.itemReference?.reference);
  }
  return [...ids];
}

async function loadMedications(reader: Reader, ids: string[]): Promise<Medication[]> {
  const docs = await Promise.all(ids.map((id) => reader.findOne<CurrentDocument>('Medication', { _id: id })));
  return docs.filter((d) => d && !d.deleted).map((d) => d!.resource as Medication);
}
