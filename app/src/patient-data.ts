import type {
  Bundle,
  CarePlan,
  CodeableConcept,
  MedicationDispense,
  MedicationRequest,
  MedicationStatement,
  Observation,
  Parameters,
  Patient,
} from '@medplum/fhirtypes';
import { addDays, daysBetween } from './dates';
import { batch, entriesOf, fhir } from './fhir';
import { readReview, type Review } from './review';

/** Everything the patient view shows, read in three requests made at once. */
export interface PatientData {
  patient: Patient;
  review: Review;
  requests: MedicationRequest[];
  dispenses: MedicationDispense[];
  statements: MedicationStatement[];
  observations: Observation[];
  carePlans: CarePlan[];
}

export async function loadPatient(id: string, date: string, periodStart: string): Promise<PatientData> {
  const p = encodeURIComponent(id);
  const [patient, reviewed, bundles] = await Promise.all([
    fhir<Patient>(`Patient/${p}`),
    fhir<Parameters>(`Patient/${p}/$medication-review?date=${date}&periodStart=${periodStart}&periodEnd=${date}`),
    batch([
      `MedicationRequest?patient=${p}&_count=1000`,
      `MedicationDispense?patient=${p}&_count=1000`,
      `MedicationStatement?patient=${p}&_count=1000`,
      `Observation?patient=${p}&_count=1000`,
      `CarePlan?patient=${p}&_count=100`,
    ]),
  ]);
  const [requests, dispenses, statements, observations, carePlans] = bundles as Bundle[];
  return {
    patient,
    review: readReview(reviewed),
    requests: entriesOf<MedicationRequest>(requests, 'MedicationRequest'),
    dispenses: entriesOf<MedicationDispense>(dispenses, 'MedicationDispense'),
    statements: entriesOf<MedicationStatement>(statements, 'MedicationStatement'),
    observations: entriesOf<Observation>(observations, 'Observation'),
    carePlans: entriesOf<CarePlan>(carePlans, 'CarePlan'),
  };
}

export function conceptText(c: CodeableConcept | undefined): string {
  return c?.text ?? c?.coding?.find((x) => x.display)?.display ?? c?.coding?.[0]?.code ?? 'unknown';
}

type Bearing = MedicationRequest | MedicationDispense | MedicationStatement;

export function medicationName(r: Bearing): string {
  if (r.medicationCodeableConcept) return conceptText(r.medicationCodeableConcept);
  return r.medicationReference?.display ?? r.medicationReference?.reference ?? 'unknown medication';
}

const PHQ9 = '44261-6';

export function isPhq9(o: Observation): boolean {
  return !!o.code?.coding?.some((c) => c.code === PHQ9);
}

export function observationDate(o: Observation): string | undefined {
  return (o.effectiveDateTime ?? o.effectivePeriod?.start ?? o.issued)?.slice(0, 10);
}

/** A screen's result as the chart tells it: positive, negative, or other (a value it cannot classify). */
export function screenResult(o: Observation): { result: 'positive' | 'negative' | 'other'; text: string } {
  const codings = [
    ...(o.interpretation ?? []).flatMap((i) => i.coding ?? []),
    ...(o.valueCodeableConcept?.coding ?? []),
  ];
  const codes = new Set(codings.map((c) => c.code?.toUpperCase()));
  const text =
    o.valueCodeableConcept?.text ??
    o.valueCodeableConcept?.coding?.find((c) => c.display)?.display ??
    o.valueString ??
    (o.valueQuantity ? `${o.valueQuantity.value} ${o.valueQuantity.unit ?? ''}`.trim() : undefined) ??
    o.interpretation?.[0]?.text ??
    o.interpretation?.[0]?.coding?.[0]?.display;
  const words = (text ?? '').toLowerCase();
  if (codes.has('NEG') || codes.has('LA6577-6') || codes.has('ND') || /negative|not detected/.test(words)) {
    return { result: 'negative', text: text ?? 'negative' };
  }
  if (codes.has('POS') || codes.has('LA6576-8') || codes.has('DET') || /positive|detected/.test(words)) {
    return { result: 'positive', text: text ?? 'positive' };
  }
  return { result: 'other', text: text ?? 'resulted, no value recorded' };
}

/** Care-plan activities by state on the review date: done, due (scheduled on or after it), overdue. */
export function activitiesOf(plans: CarePlan[], date: string) {
  return plans.flatMap((plan) =>
    (plan.activity ?? []).map((a, i) => {
      const d = a.detail;
      const scheduled =
        d?.scheduledPeriod?.start?.slice(0, 10) ??
        d?.scheduledString ??
        d?.scheduledTiming?.event?.[0]?.slice(0, 10) ??
        undefined;
      const status = d?.status ?? 'unknown';
      const state =
        status === 'completed'
          ? 'done'
          : status === 'cancelled' || status === 'stopped' || status === 'entered-in-error'
            ? 'cancelled'
            : scheduled && /^\d{4}-\d{2}-\d{2}$/.test(scheduled) && scheduled < date
              ? 'overdue'
              : 'due';
      return {
        key: `CarePlan/${plan.id}#activity[${i}]`,
        plan: `CarePlan/${plan.id}`,
        description: d?.description ?? conceptText(d?.code),
        scheduled,
        status,
        state,
        overdueDays: state === 'overdue' && scheduled ? daysBetween(scheduled, date) : 0,
      };
    }),
  );
}

/** The last day a dispense covers, unshifted (for medications no adherence class tracks). */
export function dispenseEnd(d: MedicationDispense): string | undefined {
  const day = (d.whenHandedOver ?? d.whenPrepared)?.slice(0, 10);
  if (!day) return undefined;
  return addDays(day, Math.max(1, Math.round(d.daysSupply?.value ?? 1)) - 1);
}
