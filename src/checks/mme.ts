import type { MedicationRequest } from '@medplum/fhirtypes';
import { administrationsPerDay } from './supplies';
import type { Ingredient, MedicationInfo } from './medications';

/**
 * Daily morphine milligram equivalents, CDC 2022 clinical conversion factors (as published in the CDC
 * opioid MME implementation guide, CodeSystem CDCMMEClinicalConversionFactors v3.0.0, cqframework/opioid-mme-r4).
 * Keys are RxNorm ingredient codes and names, so a Medication coded either way is found.
 * Buprenorphine has no factor in the CDC table and is therefore never counted; methadone counts (4.7)
 * unless it is prescribed for opioid use disorder, which the caller decides.
 */
const FACTORS: { rxnorm: string; name: string; factor: number }[] = [
  { rxnorm: '2670', name: 'codeine', factor: 0.15 },
  { rxnorm: '5489', name: 'hydrocodone', factor: 1 },
  { rxnorm: '3423', name: 'hydromorphone', factor: 5 },
  { rxnorm: '6813', name: 'methadone', factor: 4.7 },
  { rxnorm: '7052', name: 'morphine', factor: 1 },
  { rxnorm: '7804', name: 'oxycodone', factor: 1.5 },
  { rxnorm: '7814', name: 'oxymorphone', factor: 3 },
  { rxnorm: '787390', name: 'tapentadol', factor: 0.4 },
  { rxnorm: '10689', name: 'tramadol', factor: 0.2 },
  // Fentanyl: 0.0576 per µg/day for buccal/other forms; transdermal is handled below (2.4 per µg/hr).
  { rxnorm: '4337', name: 'fentanyl', factor: 0.0576 },
];
const TRANSDERMAL_FENTANYL_PER_MCG_HR = 2.4;

function factorOf(ingredient: Ingredient): { name: string; factor: number } | undefined {
  const codes = new Set(ingredient.codings.map((c) => c.code));
  return FACTORS.find((f) => codes.has(f.rxnorm) || ingredient.name === f.name);
}

export interface MmeLine {
  ingredient: string;
  dailyMg: number;
  factor: number;
  mme: number;
}

/**
 * MME/day of one prescription: for each opioid ingredient, mg per day (dose × administrations per day ×
 * strength per unit, or the dose itself when it is expressed in mg) × conversion factor.
 * Returns [] when the dose, timing or strength is unknown: an MME we cannot compute is not guessed.
 */
export function mmeOfRequest(request: MedicationRequest, medication: MedicationInfo): MmeLine[] {
  const dosage = request.dosageInstruction?.[0];
  const dr = dosage?.doseAndRate?.[0];
  const dose = dr?.doseQuantity ?? dr?.doseRange?.high;
  if (!dosage || dose?.value === undefined) return [];
  const perDay = administrationsPerDay(dosage);
  const doseUnit = (dose.code ?? dose.unit ?? '').toLowerCase();
  const lines: MmeLine[] = [];
  for (const ingredient of medication.ingredients) {
    const f = factorOf(ingredient);
    if (!f) continue;
    const strength = ingredient.strength;
    const transdermal =
      f.name === 'fentanyl' && (strength?.perUnit === 'hr' || /transdermal/i.test(medication.name ?? ''));
    if (transdermal) {
      // Patches: MME/day = µg/hr × 2.4, independent of how often the patch is changed.
      const mcgPerHr = strength
        ? (strength.unit === 'mg' ? strength.value * 1000 : strength.value) * dose.value
        : undefined;
      if (mcgPerHr !== undefined) {
        lines.push({
          ingredient: f.name,
          dailyMg: mcgPerHr,
          factor: TRANSDERMAL_FENTANYL_PER_MCG_HR,
          mme: mcgPerHr * TRANSDERMAL_FENTANYL_PER_MCG_HR,
        });
      }
      continue;
    }
    if (perDay === undefined) continue;
    let mgPerDose: number | undefined;
    if (doseUnit === 'mg' && medication.ingredients.length === 1) mgPerDose = dose.value;
    else if (strength && (strength.unit === 'mg' || strength.unit === 'mcg')) {
      const mg = strength.unit === 'mcg' ? strength.value / 1000 : strength.value;
      mgPerDose = (mg / strength.perValue) * dose.value;
    }
    if (mgPerDose === undefined) continue;
    const dailyMg = mgPerDose * perDay;
    lines.push({ ingredient: f.name, dailyMg, factor: f.factor, mme: dailyMg * f.factor });
  }
  return lines;
}

export function totalMme(lines: readonly MmeLine[]): number {
  return Math.round(lines.reduce((sum, l) => sum + l.mme, 0) * 100) / 100;
}

/**
 * Total MME of a dispensed quantity (PQA: strength × quantity × conversion factor, per opioid
 * ingredient). A transdermal fentanyl supply counts µg/hr × 2.4 per day of supply. Undefined when no
 * opioid ingredient has a known strength.
 */
export function mmeOfQuantity(medication: MedicationInfo, quantity: number, days: number): number | undefined {
  let total: number | undefined;
  for (const ingredient of medication.ingredients) {
    const f = factorOf(ingredient);
    const strength = ingredient.strength;
    if (!f || !strength) continue;
    const transdermal =
      f.name === 'fentanyl' && (strength.perUnit === 'hr' || /transdermal/i.test(medication.name ?? ''));
    if (transdermal) {
      const mcgPerHr = strength.unit === 'mg' ? strength.value * 1000 : strength.value;
      total = (total ?? 0) + mcgPerHr * TRANSDERMAL_FENTANYL_PER_MCG_HR * days;
      continue;
    }
    if (strength.unit !== 'mg' && strength.unit !== 'mcg') continue;
    const mg = strength.unit === 'mcg' ? strength.value / 1000 : strength.value;
    total = (total ?? 0) + (mg / strength.perValue) * quantity * f.factor;
  }
  return total;
}
