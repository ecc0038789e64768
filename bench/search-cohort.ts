import type { Resource } from '@medplum/fhirtypes';
import type { Db } from 'mongodb';
import { resourceIndexer } from '../src/app-context';
import { registerSearchIndexes } from '../src/modules/search';
import type { SearchParameterRegistry } from '../src/search';
import type { CurrentDocument } from '../src/store/documents';
import { ResourceStore, type PlannedWrite } from '../src/store/resource-store';
import { seededRandom } from './seeded-random';

/** The cohort of the search benchmark: 21 resources per patient plus 50 shared Medications. */
export const PER_PATIENT = 21;
export const LOINC = [
  '19659-2', // buprenorphine screen
  '3879-4', // opiates screen
  '44249-1', // PHQ-9 total
  '14334-7', // lithium level
  '2345-7', // glucose
  '8867-4', // heart rate
];
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';

const day = (offset: number) =>
  new Date(Date.UTC(2024, 0, 1) + Math.floor(offset) * 86_400_000).toISOString().slice(0, 10);
const ref = (reference: string) => ({ reference });

export function medications(): Resource[] {
  return Array.from({ length: 50 }, (_, m) => ({
    resourceType: 'Medication',
    id: `med${m}`,
    code: { coding: [{ system: RXNORM, code: String(1000000 + m), display: `Medication ${m}` }] },
  }));
}

export function patientResources(i: number): Resource[] {
  const rand = seededRandom(i + 1);
  const patient = `Patient/p${i}`;
  const out: Resource[] = [
    {
      resourceType: 'Patient',
      id: `p${i}`,
      identifier: [{ system: 'urn:mrn', value: `MRN${i}` }],
      name: [{ family: `Family${i % 997}`, given: [`Given${i % 101}`] }],
      gender: i % 2 ? 'female' : 'male',
      birthDate: day(-365 * (20 + (i % 50)) - (i % 365)),
    },
  ];
  for (let k = 0; k < 3; k++) {
    const authored = rand() * 330;
    const mr = `mr${i}-${k}`;
    const medication = `Medication/med${(i * 3 + k) % 50}`;
    out.push({
      resourceType: 'MedicationRequest',
      id: mr,
      status: k === 0 ? 'active' : k === 1 ? (rand() < 0.5 ? 'active' : 'stopped') : 'completed',
      intent: 'order',
      subject: ref(patient),
      medicationReference: ref(medication),
      authoredOn: day(authored),
      dispenseRequest: {
        expectedSupplyDuration: { value: 30, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' },
      },
    });
    for (let j = 0; j < 2; j++) {
      out.push({
        resourceType: 'MedicationDispense',
        id: `md${i}-${k}-${j}`,
        status: 'completed',
        subject: ref(patient),
        medicationReference: ref(medication),
        authorizingPrescription: [ref(`MedicationRequest/${mr}`)],
        whenHandedOver: `${day(authored + 1 + 30 * j + rand() * 5)}T10:00:00Z`,
        quantity: { value: 30 },
        daysSupply: { value: 30, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' },
      });
    }
  }
  for (let n = 0; n < 4; n++) {
    out.push({
      resourceType: 'MedicationStatement',
      id: `ms${i}-${n}`,
      status: n === 3 ? 'not-taken' : 'active',
      subject: ref(patient),
      medicationReference: ref(`Medication/med${(i * 3 + (n % 3)) % 50}`),
      effectiveDateTime: `${day(rand() * 360)}T08:00:00Z`,
    });
  }
  for (let n = 0; n < 6; n++) {
    out.push({
      resourceType: 'Observation',
      id: `obs${i}-${n}`,
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: LOINC[n] }] },
      subject: ref(patient),
      effectiveDateTime: `${day(rand() * 360)}T09:30:00Z`,
      valueQuantity: {
        value: Math.round(rand() * 100),
        unit: '{score}',
        system: 'http://unitsofmeasure.org',
        code: '{score}',
      },
    });
  }
  out.push({
    resourceType: 'CarePlan',
    id: `cp${i}`,
    status: rand() < 0.8 ? 'active' : 'completed',
    intent: 'plan',
    subject: ref(patient),
    activity: [
      { detail: { status: 'scheduled', scheduledPeriod: { start: day(rand() * 500), end: day(520) } } },
      { detail: { status: 'completed', scheduledString: 'monthly' } },
    ],
  });
  return out;
}

/**
 * Loads `patients` patients (and the Medications) with insertMany. The documents are the store's own:
 * ResourceStore.stage() with the server's indexer (search values and Patient compartments), one
 * timestamp per patient so that _lastUpdated varies; then the indexes the server creates, after the
 * load. Only the current versions are written: history and journal are not read by search.
 */
export async function loadCohort(
  db: Db,
  registry: SearchParameterRegistry,
  patients: number,
  onProgress: (done: number) => void,
  options: {
    indexesFirst?: boolean;
    onIndexes?: (ms: number) => void;
    /** Another cohort's resources of patient i (bench/measure.ts); default patientResources. */
    generate?: (i: number) => Resource[];
  } = {},
): Promise<void> {
  const generate = options.generate ?? patientResources;
  const store = new ResourceStore(db);
  store.setIndexer(resourceIndexer(registry));
  registerSearchIndexes((type, indexes) => store.addIndexes(type, indexes));
  const types = ['Medication', ...new Set(generate(0).map((r) => r.resourceType))];
  const indexes = async () => {
    const started = Date.now();
    await store.ensureIndexes(types);
    options.onIndexes?.(Date.now() - started);
  };
  // Indexes first: the load then pays for maintaining them, as writes to a running server do.
  if (options.indexesFirst) await indexes();
  const buffers = new Map<string, CurrentDocument[]>();
  const flush = async (type: string) => {
    const docs = buffers.get(type) ?? [];
    if (docs.length) await db.collection<CurrentDocument>(type).insertMany(docs, { ordered: false });
    buffers.set(type, []);
  };
  const add = async (resources: Resource[], ts: Date) => {
    const writes: PlannedWrite[] = resources.map((resource) => ({
      type: resource.resourceType,
      id: resource.id as string,
      method: 'PUT',
      previous: null,
      resource,
    }));
    for (const { type, next } of store.stage(writes, ts)) {
      const list = buffers.get(type) ?? [];
      list.push(next);
      buffers.set(type, list);
      if (list.length >= 2000) await flush(type);
    }
  };
  const epoch = Date.UTC(2025, 0, 1);
  await add(medications(), new Date(epoch));
  for (let i = 0; i < patients; i++) {
    await add(generate(i), new Date(epoch + (i + 1) * 1000));
    if (i % 500 === 499) onProgress(i + 1);
  }
  for (const type of buffers.keys()) await flush(type);
  // Otherwise after the load (faster bulk inserts on MongoDB), created as the server's start-up
  // migration creates them on existing data.
  if (!options.indexesFirst) await indexes();
}
