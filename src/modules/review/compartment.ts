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
  return (await loadCompartments(reader, [patientId], types)).get(patientId) ?? [];
}

/** Most patients one query names: our FerretDB patch pushes an `$in` of up to 200 strings down to its index. */
export const MAX_COMPARTMENTS_PER_QUERY = 200;

/**
 * loadCompartment for several patients at once (a population measure's batch, the findings worker's):
 * one query per type for all of them, each patient's resources in the same order a single load gives,
 * each Medication looked up once for the batch.
 */
export async function loadCompartments(
  reader: Reader,
  patientIds: readonly string[],
  types: readonly string[],
): Promise<Map<string, Resource[]>> {
  const lists = await Promise.all(types.map((type) => liveInCompartments(reader, type, patientIds)));
  const byPatient = new Map<string, Resource[]>(patientIds.map((id) => [id, lists.flatMap((l) => l.get(id) ?? [])]));
  // Every patient's Medications in one round of look-ups, then their ingredients in a second: the
  // batch waits on two rounds whatever its size, and a Medication several patients share is read once.
  const found = new Map<string, Medication | undefined>();
  const lookUp = (ids: string[]) =>
    loadMedications(
      reader,
      [...new Set(ids)].filter((id) => !found.has(id)),
      found,
    );
  const known = (ids: string[]) => ids.map((id) => found.get(id)).filter((m): m is Medication => m !== undefined);
  const direct = new Map([...byPatient].map(([id, resources]) => [id, medicationIds(resources)]));
  await lookUp([...direct.values()].flat());
  // Ingredients may reference other Medications (the engine follows one level of that).
  const ingredients = new Map(
    [...direct].map(([id, ids]) => {
      const medications = known(ids);
      return [id, medicationIds(medications).filter((m) => !medications.some((x) => x.id === m))];
    }),
  );
  await lookUp([...ingredients.values()].flat());
  for (const [id, resources] of byPatient) {
    byPatient.set(id, [...resources, ...known(direct.get(id) ?? []), ...known(ingredients.get(id) ?? [])]);
  }
  return byPatient;
}

/**
 * The live resources of one type in each patient's compartment, with one query for all of them, sorted
 * by id so that what is made of them (evidence, finding order) does not depend on the engine's natural
 * order or on which patients were loaded together. A resource in several of the compartments is in
 * each one's list. `numberTexts` brings back the decimals' written text (what a read by _id gives).
 */
export async function liveInCompartments(
  reader: Reader,
  type: string,
  patientIds: readonly string[],
  numberTexts = false,
): Promise<Map<string, Resource[]>> {
  if (patientIds.length > MAX_COMPARTMENTS_PER_QUERY) throw new Error('too many compartments for one query');
  const wanted = new Map(patientIds.map((id) => [`Patient/${id}`, id]));
  const single = patientIds.length === 1;
  const docs = await reader.find<CurrentDocument>(
    type,
    {
      compartments: single ? `Patient/${patientIds[0]}` : { $in: [...wanted.keys()] },
      deleted: { $ne: true },
    },
    { projection: { _id: 0, resource: 1, ...(single ? {} : { compartments: 1 }), ...(numberTexts ? { nt: 1 } : {}) } },
  );
  const byPatient = new Map<string, Resource[]>(patientIds.map((id) => [id, []]));
  for (const doc of docs.sort((a, b) => byId(a.resource, b.resource))) {
    if (single) byPatient.get(patientIds[0])?.push(doc.resource);
    else for (const c of doc.compartments ?? []) byPatient.get(wanted.get(c) ?? '')?.push(doc.resource);
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

async function loadMedications(
  reader: Reader,
  ids: string[],
  into: Map<string, Medication | undefined>,
): Promise<void> {
  const docs = await Promise.all(ids.map((id) => reader.findOne<CurrentDocument>('Medication', { _id: id })));
  ids.forEach((id, i) => {
    const doc = docs[i];
    into.set(id, doc && !doc.deleted ? (doc.resource as Medication) : undefined);
  });
}
