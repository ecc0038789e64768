import type {
  Coding,
  Condition,
  MeasureReport,
  MedicationDispense,
  MedicationRequest,
  Patient,
  Resource,
} from '@medplum/fhirtypes';
import type { Express } from 'express';
import request from 'supertest';

/**
 * The one builder of the population-report tests: patients with fills dated by day offsets from the
 * period start, conditions, and reading a MeasureReport's counts. Every product is a real RxNorm code
 * of the shipped classes (or, where a DRUGS entry names its system, an ATC code or an NDC of one).
 */

export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const SNOMED = 'http://snomed.info/sct';
export const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
export const ATC = 'http://www.whocc.no/atc';
export const NDC = 'http://hl7.org/fhir/sid/ndc';
export const PART2 = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: '42CFRPart2' };

/** The measurement year of the tests: 2025 (365 days, day 0 = 2025-01-01, day 364 = 2025-12-31). */
export const PERIOD = { start: '2025-01-01', end: '2025-12-31' };
export const LAST_DAY = 364;

export const DRUGS = {
  atorvastatin: { code: '259255', display: 'atorvastatin 80 MG Oral Tablet' },
  simvastatin: { code: '198211', display: 'simvastatin 40 MG Oral Tablet' },
  glipizide: { code: '310490', display: 'glipizide 5 MG Oral Tablet' },
  glimepiride: { code: '199246', display: 'glimepiride 2 MG Oral Tablet' },
  lisinopril: { code: '314076', display: 'lisinopril 10 MG Oral Tablet' },
  losartan: { code: '979492', display: 'losartan potassium 50 MG Oral Tablet' },
  entresto: { code: '1656349', display: 'sacubitril 49 MG / valsartan 51 MG Oral Tablet' },
  oxycodone10: { code: '1049683', display: 'oxycodone hydrochloride 10 MG Oral Tablet' },
  oxycodone5: { code: '1049621', display: 'oxycodone hydrochloride 5 MG Oral Tablet' },
  morphine15: { code: '892582', display: 'morphine sulfate 15 MG Oral Tablet' },
  alprazolam: { code: '308048', display: 'alprazolam 0.5 MG Oral Tablet' },
  diazepam: { code: '197591', display: 'diazepam 5 MG Oral Tablet' },
  buprenorphine: { code: '1010604', display: 'buprenorphine 8 MG / naloxone 2 MG Sublingual Film' },
  methadone: { code: '864706', display: 'methadone hydrochloride 10 MG Oral Tablet' },
  naltrexone: { code: '1483744', display: 'naltrexone hydrochloride 50 MG Oral Tablet' },
  glargine: { code: '311041', display: 'insulin glargine 100 UNT/ML Injectable Solution' },
  degludecLiraglutide: {
    code: '1860167',
    display: '3 ML insulin degludec 100 UNT/ML / liraglutide 3.6 MG/ML Pen Injector',
  },
  // Insulin coded otherwise than by RxNorm product: the WHO ATC substance (insulin glargine) and a package NDC (Tresiba).
  glargineAtc: { system: ATC, code: 'A10AE04', display: 'insulin glargine' },
  tresibaNdc: { system: NDC, code: '0169-2662-90', display: 'Tresiba 100 U/mL, 10 mL vial' },
} as const;
export type Drug = keyof typeof DRUGS;

export const CONDITIONS = {
  esrd: { system: SNOMED, code: '46177005' },
  esrdIcd: { system: ICD10CM, code: 'N18.6' },
  dialysis: { system: ICD10CM, code: 'Z99.2' },
  ckd4: { system: ICD10CM, code: 'N18.4' },
  hospice: { system: SNOMED, code: '385763009' },
  cancer: { system: ICD10CM, code: 'C50.911' },
  cancerSct: { system: SNOMED, code: '363346000' },
  benignNeoplasm: { system: ICD10CM, code: 'D24.1' },
  sickleCell: { system: ICD10CM, code: 'D57.1' },
  sickleTrait: { system: ICD10CM, code: 'D57.3' },
  oud: { system: ICD10CM, code: 'F11.20' },
} as const;

/** A FHIR date `day` days after 2025-01-01 (negative: before). */
export function dayOf(day: number): string {
  return new Date(Date.UTC(2025, 0, 1) + day * 86_400_000).toISOString().slice(0, 10);
}

export interface Fill {
  drug: Drug;
  day: number;
  days: number;
  /** Dispensed quantity (for MME); default: days (one unit a day). */
  quantity?: number;
  /** The dispense records no days' supply (insulin dispenses often do not). */
  noDaysSupply?: boolean;
  /** Prescribed (with its expected supply) but never dispensed: no claim, so no PQA fill. */
  notDispensed?: boolean;
  prescriber?: string;
}

export interface PatientSpec {
  id: string;
  birthDate?: string;
  gender?: Patient['gender'];
  fills?: Fill[];
  conditions?: (keyof typeof CONDITIONS)[];
  part2?: boolean;
}

/** A patient, its prescriptions (one per fill, by `prescriber`), its dispenses and its conditions. */
export function patientRecords(spec: PatientSpec): Resource[] {
  const security = spec.part2 ? { meta: { security: [PART2] } } : {};
  const subject = { reference: `Patient/${spec.id}` };
  const patient: Patient = {
    resourceType: 'Patient',
    id: spec.id,
    birthDate: spec.birthDate ?? '1970-06-15',
    ...(spec.gender !== undefined ? { gender: spec.gender } : { gender: 'female' }),
  };
  const resources: Resource[] = [patient];
  (spec.fills ?? []).forEach((fill, i) => {
    const drug: Coding = { system: RXNORM, ...DRUGS[fill.drug] };
    const prescription: MedicationRequest = {
      resourceType: 'MedicationRequest',
      id: `${spec.id}-rx${i}`,
      ...security,
      status: 'completed',
      intent: 'order',
      subject,
      medicationCodeableConcept: { coding: [drug], text: drug.display },
      authoredOn: dayOf(fill.day),
      requester: { reference: `Practitioner/${fill.prescriber ?? 'dr-a'}` },
      dispenseRequest: {
        validityPeriod: { start: dayOf(fill.day) },
        expectedSupplyDuration: { value: fill.days, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' },
      },
    };
    if (fill.notDispensed) {
      resources.push(prescription);
      return;
    }
    const dispense: MedicationDispense = {
      resourceType: 'MedicationDispense',
      id: `${spec.id}-fill${i}`,
      ...security,
      status: 'completed',
      subject,
      medicationCodeableConcept: { coding: [drug], text: drug.display },
      authorizingPrescription: [{ reference: `MedicationRequest/${prescription.id}` }],
      whenHandedOver: dayOf(fill.day),
      ...(fill.noDaysSupply
        ? {}
        : { daysSupply: { value: fill.days, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' } }),
      quantity: { value: fill.quantity ?? fill.days },
    };
    resources.push(prescription, dispense);
  });
  (spec.conditions ?? []).forEach((name, i) => {
    const condition: Condition = {
      resourceType: 'Condition',
      id: `${spec.id}-cond${i}`,
      ...security,
      subject,
      code: { coding: [CONDITIONS[name]] },
      clinicalStatus: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }],
      },
    };
    resources.push(condition);
  });
  return resources;
}

/** Fills of `days` days every `every` days from `first` on, `count` of them. */
export function refills(drug: Drug, first: number, count: number, days: number, every = days, prescriber?: string) {
  return Array.from({ length: count }, (_, i): Fill => ({ drug, day: first + i * every, days, prescriber }));
}

export interface Counts {
  'initial-population': number;
  denominator: number;
  'denominator-exclusion'?: number;
  numerator: number;
}

export function countsOf(report: MeasureReport, group = 0): Record<string, number> {
  return Object.fromEntries(
    (report.group?.[group].population ?? []).map((p) => [p.code?.coding?.[0]?.code as string, p.count as number]),
  );
}

/** Per stratum value of the stratifier with this code: its population counts. */
export function strataOf(report: MeasureReport, code: string, group = 0): Record<string, Record<string, number>> {
  const stratifier = report.group?.[group].stratifier?.find((s) => s.code?.[0]?.coding?.[0]?.code === code);
  return Object.fromEntries(
    (stratifier?.stratum ?? []).map((s) => [
      s.value?.text as string,
      Object.fromEntries((s.population ?? []).map((p) => [p.code?.coding?.[0]?.code as string, p.count as number])),
    ]),
  );
}

/** The patient ids of a subject-list report's population, from its contained List. */
export function subjectsOf(report: MeasureReport, code: string, group = 0): string[] {
  const population = report.group?.[group].population?.find((p) => p.code?.coding?.[0]?.code === code);
  const id = population?.subjectResults?.reference?.slice(1);
  const list = report.contained?.find((r) => r.id === id) as { entry?: { item: { reference?: string } }[] } | undefined;
  return (list?.entry ?? []).map((e) => (e.item.reference as string).replace('Patient/', ''));
}

/** GET Measure/[id]/$evaluate-measure over the test period; expects 200. */
export async function evaluate(
  app: Express,
  measure: string,
  query: Record<string, string> = {},
  authorization?: string,
): Promise<MeasureReport> {
  const call = request(app)
    .get(`/fhir/Measure/${measure}/$evaluate-measure`)
    .query({ periodStart: PERIOD.start, periodEnd: PERIOD.end, ...query });
  const response = await (authorization ? call.set('Authorization', authorization) : call);
  if (response.status !== 200)
    throw new Error(`$evaluate-measure: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as MeasureReport;
}
