import type { MedicationRequest } from '@medplum/fhirtypes';
import { loadChecks, loadMedicationClasses, mmeOfRequest, reviewPatient } from '../../../src/checks';
import { indexResources, medicationOf } from '../../../src/checks/medications';
import { totalMme } from '../../../src/checks/mme';
import { MEDS, OUD_DIAGNOSIS, condition, daily, medication, patient, request } from '../../fixtures/checks/builders';

const classes = loadMedicationClasses();
const checks = loadChecks();

function mme(r: MedicationRequest, extra: Parameters<typeof indexResources>[0] = []): number {
  return totalMme(mmeOfRequest(r, medicationOf(r, indexResources([r, ...extra]))));
}

describe('daily MME (CDC 2022 factors)', () => {
  test('oxycodone 10 mg four times a day = 40 mg × 1.5 = 60', () => {
    expect(mme(request('a', MEDS.oxycodone10, '2026-01-01', { dosageInstruction: [daily(1, 4)] }))).toBe(60);
  });
  test('morphine ER 30 mg twice a day = 60', () => {
    expect(mme(request('a', MEDS.morphineEr30, '2026-01-01', { dosageInstruction: [daily(1, 2)] }))).toBe(60);
  });
  test('fentanyl 25 µg/hr patch every 72 h = 25 × 2.4 = 60', () => {
    const dosage = {
      timing: { repeat: { frequency: 1, period: 3, periodUnit: 'd' as const } },
      doseAndRate: [{ doseQuantity: { value: 1, unit: 'patch' } }],
    };
    expect(mme(request('a', MEDS.fentanylPatch25, '2026-01-01', { dosageInstruction: [dosage] }))).toBe(60);
  });
  test('dose in mg, and strength from Medication.ingredient.strength', () => {
    const inMg = {
      timing: { repeat: { frequency: 3, period: 1, periodUnit: 'd' as const } },
      doseAndRate: [{ doseQuantity: { value: 10, unit: 'mg', code: 'mg' } }],
    };
    expect(mme(request('a', MEDS.oxycodone5, '2026-01-01', { dosageInstruction: [inMg] }))).toBe(45);
    const hydrocodone = medication('h', { text: 'hydrocodone tablet' }, [
      { code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '5489' }] }, mg: 10 },
    ]);
    const r = request('b', MEDS.oxycodone5, '2026-01-01', {
      medicationCodeableConcept: undefined,
      medicationReference: { reference: 'Medication/h' },
      dosageInstruction: [daily(1, 3)],
    });
    expect(mme(r, [hydrocodone])).toBe(30);
  });
  test('buprenorphine has no CDC factor; unknown dose or timing gives nothing rather than a guess', () => {
    expect(mme(request('a', MEDS.buprenorphineNaloxone8, '2026-01-01', { dosageInstruction: [daily(2)] }))).toBe(0);
    expect(mme(request('b', MEDS.oxycodone10, '2026-01-01', { dosageInstruction: [{ text: 'as directed' }] }))).toBe(0);
  });
  test('methadone for pain counts (4.7), methadone for OUD does not', () => {
    const methadone = request('m', MEDS.methadone10, '2026-06-01', { dosageInstruction: [daily(1, 2)] });
    const run = (extra: Parameters<typeof indexResources>[0]) =>
      reviewPatient(
        { patient: patient(), resources: [methadone, ...extra], date: '2026-06-30' },
        classes,
        checks,
      ).parameter?.filter(
        (p) =>
          (p.resource as { code?: { coding?: { code?: string }[] } } | undefined)?.code?.coding?.[0]?.code ===
          'high-mme',
      ) ?? [];
    const pain = run([]);
    expect(pain).toHaveLength(1);
    expect((pain[0].resource as { detail?: string }).detail).toContain('94 MME/day');
    expect((pain[0].resource as { severity?: string }).severity).toBe('high');
    expect(run([condition('oud', OUD_DIAGNOSIS)])).toHaveLength(0);
  });
});
