import type {
  Bundle,
  BundleEntry,
  CarePlan,
  CodeableConcept,
  Identifier,
  Medication,
  MedicationDispense,
  MedicationRequest,
  MedicationStatement,
  Observation,
  Patient,
  Practitioner,
  Reference,
  Resource,
} from '@medplum/fhirtypes';
import { daily, MEDS } from '../test/fixtures/checks/builders';
import { seededRandom } from './seeded-random';

/**
 * The cohort of the scale benchmark (bench/scale.ts), sent the way an EHR syncs: 100-entry transaction
 * Bundles with business identifiers on every resource, conditional creates (`ifNoneExist` by
 * identifier), `urn:uuid` references between the entries of a Bundle, and conditional references
 * (`Practitioner?identifier=…`, `Medication?identifier=…`) to the directory the first Bundle loads.
 * Each patient is 50 entries (a year of medication history), so a Bundle carries two patients.
 * Everything is drawn from a seeded PRNG: the same seed gives the same Bundles, byte for byte.
 */

export const ENTRIES_PER_BUNDLE = 100;
export const PATIENTS_PER_BUNDLE = 2;
export const REVIEW_DATE = '2026-06-30';
export const PHQ9 = '44261-6';
export const UDS_CODES = ['93494-3', '58359-1', '3879-4', '19659-2', '58381-5', '16250-3'];

const SYSTEM = {
  mrn: 'http://hospital.example.org/mrn',
  rx: 'http://hospital.example.org/prescriptions',
  fill: 'http://pharmacy.example.org/fills',
  report: 'http://app.example.org/dose-reports',
  lab: 'http://lab.example.org/results',
  plan: 'http://hospital.example.org/care-plans',
  npi: 'http://hl7.org/fhir/sid/us-npi',
  formulary: 'http://hospital.example.org/formulary',
};
const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const PROFILE = 'http://meds-fhir.example.org/fhir/StructureDefinition';
// prettier-ignore
const SURNAMES = [
  'Rivera', 'Okafor', 'Nguyen', 'Schmidt', 'Haddad', 'Kowalski', 'Moreno', 'Tanaka', 'Osei', 'Lindqvist',
  'Petrov', 'Mahlangu', 'Fitzgerald', 'Castillo', 'Brennan', 'Rossi', 'Yilmaz', 'Novak', 'Delgado', 'Ibrahim',
  'Larsen', 'Chowdhury', 'Mendes', 'Abara', 'Sorensen', 'Kaminski', 'Ortega', 'Whitfield', 'Bauer', 'Santos',
];
const GIVEN = [
  'Daniel',
  'Amara',
  'Lena',
  'Marco',
  'Priya',
  'Tomas',
  'Grace',
  'Yusuf',
  'Ines',
  'Oliver',
  'Sofia',
  'Kwame',
];

/**
 * Drugs a dispense can carry as a code: the dispense profile wants exactly one coding, RxNorm. The
 * four prescriptions of a patient are one of each group (treatment, psychiatric, chronic, acute).
 */
const DRUGS = {
  treatment: ['buprenorphineNaloxone8', 'buprenorphine8Tablet', 'methadone10'],
  psychiatric: ['sertraline', 'lorazepam1'],
  chronic: ['atorvastatin', 'simvastatin', 'metformin', 'glipizide'],
  acute: ['oxycodone5', 'oxycodone10', 'alprazolam05', 'morphineEr30'],
} satisfies Record<string, (keyof typeof MEDS)[]>;
type DrugKey = keyof typeof MEDS;

export const PRACTITIONERS = ENTRIES_PER_BUNDLE - Object.keys(MEDS).length;

const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)];

function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + Math.floor(n) * 86_400_000).toISOString().slice(0, 10);
}

const npi = (n: number) => String(1_000_000_000 + n * 7_919);
const practitionerRef = (n: number): Reference<Practitioner> => ({
  reference: `Practitioner?identifier=${SYSTEM.npi}|${npi(n % PRACTITIONERS)}`,
});
const medicationRef = (key: DrugKey): Reference<Medication> => ({
  reference: `Medication?identifier=${SYSTEM.formulary}|${key}`,
});
const ident = (system: string, value: string): Identifier[] => [{ system, value }];

/** A conditional create: stored once, whatever the number of times the EHR sends it. */
function conditionalCreate(resource: Resource & { identifier?: Identifier[] }, fullUrl?: string): BundleEntry {
  const id = resource.identifier?.[0];
  return {
    ...(fullUrl ? { fullUrl } : {}),
    resource,
    request: { method: 'POST', url: resource.resourceType, ifNoneExist: `identifier=${id?.system}|${id?.value}` },
  };
}

function transaction(entry: BundleEntry[]): Bundle {
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

/** The first Bundle: the formulary's Medications and the prescribers and pharmacists. */
export function directoryBundle(): Bundle {
  const medications = (Object.keys(MEDS) as DrugKey[]).map((key) =>
    conditionalCreate({
      resourceType: 'Medication',
      identifier: ident(SYSTEM.formulary, key),
      code: MEDS[key],
      status: 'active',
    } satisfies Medication),
  );
  const practitioners = Array.from({ length: ENTRIES_PER_BUNDLE - medications.length }, (_, n) =>
    conditionalCreate({
      resourceType: 'Practitioner',
      identifier: ident(SYSTEM.npi, npi(n)),
      active: true,
      name: [{ family: SURNAMES[(n * 7) % SURNAMES.length], given: [GIVEN[n % GIVEN.length]], prefix: ['Dr.'] }],
    } satisfies Practitioner),
  );
  return transaction([...medications, ...practitioners]);
}

/** What the mix needs to know of patient `i` without asking the server. */
export interface PatientIdentity {
  mrn: string;
  family: string;
}

export function patientIdentity(seed: number, i: number): PatientIdentity {
  const rand = seededRandom(seed * 1_000_003 + i);
  return { mrn: `MRN-${seed}-${i}`, family: pick(rand, SURNAMES) };
}

export function mrnSystem(): string {
  return SYSTEM.mrn;
}

/** Fields every resource of patient `i` shares, and where its entries get their urn:uuid names. */
interface PatientContext {
  rand: () => number;
  key: string;
  subject: Reference<Patient>;
  prescriber: Reference<Practitioner>;
  pharmacist: Reference<Practitioner>;
  urn: (suffix: string) => string;
}

function patientContext(seed: number, i: number): PatientContext {
  const rand = seededRandom(seed * 1_000_003 + i);
  rand(); // the family name patientIdentity() draws
  const key = `${seed}-${i}`;
  const urn = (suffix: string) =>
    `urn:uuid:5ca1e000-${String(seed % 10_000).padStart(4, '0')}-4000-8${suffix.padStart(3, '0')}-${String(i).padStart(12, '0')}`;
  return {
    rand,
    key,
    subject: { reference: urn('0') },
    prescriber: practitionerRef(i),
    pharmacist: practitionerRef(i + 41),
    urn,
  };
}

function patient(seed: number, i: number, c: PatientContext): Patient {
  const { mrn, family } = patientIdentity(seed, i);
  return {
    resourceType: 'Patient',
    identifier: ident(SYSTEM.mrn, mrn),
    active: true,
    name: [{ use: 'official', family, given: [pick(c.rand, GIVEN)] }],
    gender: i % 2 ? 'female' : 'male',
    birthDate: addDays('1950-01-01', c.rand() * 365 * 50),
    telecom: [{ system: 'phone', value: `+1-555-${String(i % 10_000).padStart(4, '0')}`, use: 'mobile' }],
  };
}

function prescription(c: PatientContext, k: number, drug: DrugKey, authoredOn: string): MedicationRequest {
  return {
    resourceType: 'MedicationRequest',
    identifier: ident(SYSTEM.rx, `RX-${c.key}-${k}`),
    status: k < 2 ? 'active' : k === 2 ? pick(c.rand, ['active', 'stopped'] as const) : 'completed',
    intent: 'order',
    subject: c.subject,
    medicationReference: medicationRef(drug),
    authoredOn,
    requester: c.prescriber,
    dosageInstruction: [daily(1 + (k % 2))],
    dispenseRequest: {
      expectedSupplyDuration: { value: 30, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
    },
  };
}

function dispense(c: PatientContext, k: number, j: number, drug: DrugKey, day: string): MedicationDispense {
  return {
    resourceType: 'MedicationDispense',
    meta: { profile: [`${PROFILE}/meds-dispense`] },
    identifier: ident(SYSTEM.fill, `FILL-${c.key}-${k}-${j}`),
    status: 'completed',
    medicationCodeableConcept: MEDS[drug],
    subject: c.subject,
    performer: [{ actor: c.pharmacist }],
    authorizingPrescription: [{ reference: c.urn(`${1 + k}`) }],
    quantity: { value: 30, unit: 'tablet', system: 'http://unitsofmeasure.org', code: '{tbl}' },
    daysSupply: { value: 30, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
    whenHandedOver: `${day}T${String(9 + Math.floor(c.rand() * 8)).padStart(2, '0')}:15:00Z`,
  };
}

function doseReport(c: PatientContext, n: number, drug: DrugKey, day: string): MedicationStatement {
  const missed = n % 4 === 3;
  return {
    resourceType: 'MedicationStatement',
    meta: { profile: [`${PROFILE}/meds-medication-statement`] },
    identifier: ident(SYSTEM.report, `DOSE-${c.key}-${n}`),
    status: missed ? 'not-taken' : 'active',
    ...(missed ? { statusReason: [{ text: 'Ran out before the refill was ready' }] } : {}),
    medicationCodeableConcept: MEDS[drug],
    subject: c.subject,
    basedOn: [{ reference: c.urn('1') }],
    effectiveDateTime: day,
    dateAsserted: `${addDays(day, 1)}T08:00:00Z`,
    informationSource: c.subject,
  };
}

const concept = (system: string, code: string): CodeableConcept => ({ coding: [{ system, code }] });

function drugScreen(c: PatientContext, n: number, day: string): Observation {
  return {
    resourceType: 'Observation',
    meta: { profile: [`${PROFILE}/meds-urine-drug-screen`] },
    identifier: ident(SYSTEM.lab, `UDS-${c.key}-${n}`),
    status: 'final',
    category: [concept(OBSERVATION_CATEGORY, 'laboratory')],
    code: concept(LOINC, UDS_CODES[n % UDS_CODES.length]),
    subject: c.subject,
    effectiveDateTime: `${day}T10:30:00Z`,
    performer: [c.prescriber],
    valueCodeableConcept: concept(SNOMED, c.rand() < 0.7 ? '10828004' : '260385009'),
  };
}

function phq9(c: PatientContext, n: number, day: string): Observation {
  return {
    resourceType: 'Observation',
    meta: { profile: [`${PROFILE}/meds-phq9`] },
    identifier: ident(SYSTEM.lab, `PHQ9-${c.key}-${n}`),
    status: 'final',
    category: [concept(OBSERVATION_CATEGORY, 'survey')],
    code: concept(LOINC, PHQ9),
    subject: c.subject,
    effectiveDateTime: `${day}T11:00:00Z`,
    valueInteger: Math.floor(c.rand() * 28),
  };
}

function carePlan(c: PatientContext, start: string): CarePlan {
  const visit = (day: string, status: 'completed' | 'scheduled') => ({
    detail: {
      kind: 'Appointment' as const,
      code: concept(SNOMED, '390906007'),
      status,
      scheduledPeriod: { start: day, end: day },
      description: 'Follow-up visit',
    },
  });
  return {
    resourceType: 'CarePlan',
    meta: { profile: [`${PROFILE}/meds-follow-up-careplan`] },
    identifier: ident(SYSTEM.plan, `PLAN-${c.key}`),
    status: c.rand() < 0.8 ? 'active' : 'completed',
    intent: 'plan',
    category: [concept(SNOMED, '736378000')],
    subject: c.subject,
    period: { start },
    author: c.prescriber,
    activity: [visit(addDays(start, 7), 'completed'), visit(addDays(REVIEW_DATE, 15), 'scheduled')],
  };
}

/** The 50 entries of patient `i`: 1 Patient, 4 prescriptions, 20 fills, 12 dose reports, 12 results, 1 plan. */
export function patientEntries(seed: number, i: number): BundleEntry[] {
  const c = patientContext(seed, i);
  const drugs: DrugKey[] = [
    pick(c.rand, DRUGS.treatment),
    pick(c.rand, DRUGS.psychiatric),
    pick(c.rand, DRUGS.chronic),
  ];
  drugs.push(pick(c.rand, DRUGS.acute));
  const start = addDays('2025-07-01', c.rand() * 20);
  const entries: BundleEntry[] = [conditionalCreate(patient(seed, i, c), c.urn('0'))];
  drugs.forEach((drug, k) => {
    entries.push(conditionalCreate(prescription(c, k, drug, addDays(start, k * 30)), c.urn(`${1 + k}`)));
  });
  drugs.forEach((drug, k) => {
    // Fills every 30 days, a few days late now and then, so adherence varies between patients.
    for (let j = 0; j < 5; j++)
      entries.push(conditionalCreate(dispense(c, k, j, drug, addDays(start, k * 30 + j * 33))));
  });
  for (let n = 0; n < 12; n++) entries.push(conditionalCreate(doseReport(c, n, drugs[0], addDays(start, n * 29))));
  for (let n = 0; n < 6; n++) entries.push(conditionalCreate(drugScreen(c, n, addDays(start, n * 58 + c.rand() * 9))));
  for (let n = 0; n < 6; n++) entries.push(conditionalCreate(phq9(c, n, addDays(start, n * 60 + c.rand() * 9))));
  entries.push(conditionalCreate(carePlan(c, start)));
  return entries;
}

/** Patient Bundle `b` (0-based) of the load: patients 2b and 2b+1. */
export function patientBundle(seed: number, b: number): Bundle {
  const entries: BundleEntry[] = [];
  for (let p = 0; p < PATIENTS_PER_BUNDLE; p++) entries.push(...patientEntries(seed, b * PATIENTS_PER_BUNDLE + p));
  return transaction(entries);
}

/** A new prescription for an existing patient, as a prescriber's single POST sends it. */
export function newPrescription(patientId: string, n: number): MedicationRequest {
  return {
    resourceType: 'MedicationRequest',
    identifier: ident(SYSTEM.rx, `RX-single-${n}`),
    status: 'active',
    intent: 'order',
    subject: { reference: `Patient/${patientId}` },
    medicationCodeableConcept: MEDS.sertraline,
    authoredOn: REVIEW_DATE,
    dosageInstruction: [daily(1)],
    dispenseRequest: {
      expectedSupplyDuration: { value: 30, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
    },
  };
}
