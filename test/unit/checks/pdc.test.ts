import type { CodeableConcept, MedicationDispense } from '@medplum/fhirtypes';
import { computePdc, loadMedicationClasses } from '../../../src/checks';
import { fromDay, toDay } from '../../../src/checks/dates';
import { MEDS, daily, dispense, fills, medication, request } from '../../fixtures/checks/builders';
import pqa from '../../fixtures/checks/pqa-examples.json';

const classes = loadMedicationClasses();
const diabetes = classes.matcher('diabetes-non-insulin');
const statins = classes.matcher('statins');
const DRUGS: Record<string, CodeableConcept> = { metformin: MEDS.metformin, glipizide: MEDS.glipizide };

describe('PDC: PQA published test cases', () => {
  for (const c of pqa.cases) {
    test(c.name, () => {
      const dispenses = c.claims.map((cl, i) => dispense(`d${i}`, DRUGS[cl.drug], cl.dateOfFill, cl.daysSupply));
      const r = computePdc(dispenses, [], [], diabetes, pqa.period);
      // PQA's adjusted first/last dose per claim (last dose cut at the period end).
      const end = toDay(pqa.period.end)!;
      const byRef = new Map(r.supplies.map((s) => [s.reference, s]));
      c.claims.forEach((cl, i) => {
        const s = byRef.get(`MedicationDispense/d${i}`)!;
        expect([fromDay(s.startDay), fromDay(Math.min(s.endDay, end))]).toEqual([
          cl.dateOfFirstDose,
          cl.dateOfLastDose,
        ]);
      });
      expect(r.treatmentStart).toBe(c.expected.treatmentStart);
      expect(r.daysInPeriod).toBe(c.expected.daysInPeriod);
      expect(r.daysCovered).toBe(c.expected.daysCovered);
      expect(Math.round(r.pdc * 10000) / 10000).toBe(c.expected.pdc);
      expect(r.adherent).toBe(c.expected.adherent);
      expect(r.eligible).toBe(c.expected.eligible);
      if ('indexAtLeast91DaysBeforeEnd' in c.expected) {
        expect(r.indexAtLeast91DaysBeforeEnd).toBe(c.expected.indexAtLeast91DaysBeforeEnd);
      }
    });
  }
});

describe('PDC rules', () => {
  const period = { start: '2026-01-01', end: '2026-12-31' };

  test('same ingredient in another strength or product still shifts; coverage past the period end is cut', () => {
    const twenty = medication('atorva20', { text: 'atorvastatin 20 MG Oral Tablet' }, [
      { code: MEDS.atorvastatin, mg: 20 },
    ]);
    const forty = medication('atorva40', { text: 'atorvastatin 40 MG Oral Tablet' }, [
      { code: MEDS.atorvastatin, mg: 40 },
    ]);
    const d1 = dispense('d1', MEDS.atorvastatin, '2026-11-01', 30, {
      medicationCodeableConcept: undefined,
      medicationReference: { reference: 'Medication/atorva20' },
    });
    const d2 = dispense('d2', MEDS.atorvastatin, '2026-11-21', 30, {
      medicationCodeableConcept: undefined,
      medicationReference: { reference: 'Medication/atorva40' },
    });
    const r = computePdc([d1, d2], [], [twenty, forty], statins, period);
    expect(r.supplies.map((s) => [fromDay(s.startDay), fromDay(s.endDay)])).toEqual([
      ['2026-11-01', '2026-11-30'],
      ['2026-12-01', '2026-12-30'],
    ]);
    expect(r.daysInPeriod).toBe(61);
    expect(r.daysCovered).toBe(60);
  });

  test('different drugs of the class overlap without shifting', () => {
    const r = computePdc(
      [dispense('a', MEDS.atorvastatin, '2026-10-01', 60), dispense('b', MEDS.simvastatin, '2026-10-31', 30)],
      [],
      [],
      statins,
      period,
    );
    expect(r.supplies.map((s) => fromDay(s.startDay))).toEqual(['2026-10-01', '2026-10-31']);
    expect(r.daysCovered).toBe(60);
    expect(r.daysInPeriod).toBe(92);
  });

  test('cancelled, entered-in-error and declined dispenses do not count; whenPrepared stands in for whenHandedOver', () => {
    const ds: MedicationDispense[] = [
      dispense('ok', MEDS.metformin, '2026-07-01', 30),
      dispense('c', MEDS.metformin, '2026-07-31', 30, { status: 'cancelled' }),
      dispense('e', MEDS.metformin, '2026-07-31', 30, { status: 'entered-in-error' }),
      dispense('x', MEDS.metformin, '2026-07-31', 30, { status: 'declined' }),
      dispense('p', MEDS.metformin, '2026-09-01', 30, {
        whenHandedOver: undefined,
        whenPrepared: '2026-09-01T10:00:00Z',
      }),
    ];
    const r = computePdc(ds, [], [], diabetes, period);
    expect(r.supplies.map((s) => s.reference)).toEqual(['MedicationDispense/ok', 'MedicationDispense/p']);
    expect(r.daysCovered).toBe(60);
  });

  test('without daysSupply: quantity divided by the daily dose of the prescription', () => {
    const rx = request('rx1', MEDS.metformin, '2026-12-01', { dosageInstruction: [daily(1, 2)] });
    const d = dispense('d1', MEDS.metformin, '2026-12-01', undefined, {
      prescription: 'rx1',
      quantity: { value: 20, unit: 'TAB' },
    });
    const r = computePdc([d], [rx], [], diabetes, period);
    expect(r.supplies[0].days).toBe(10);
    expect(r.daysCovered).toBe(10);
    expect(r.daysInPeriod).toBe(31);
  });

  test('a prescription without any dispense stands in, flagged as prescription-based', () => {
    const rx = request('rx1', MEDS.metformin, '2026-10-01', {
      dispenseRequest: {
        validityPeriod: { start: '2026-10-01' },
        expectedSupplyDuration: { value: 30, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
        numberOfRepeatsAllowed: 1,
      },
    });
    const r = computePdc([], [rx], [], diabetes, period);
    expect(r.prescriptionBased).toBe(true);
    expect(r.supplies[0]).toMatchObject({ reference: 'MedicationRequest/rx1', days: 60, prescriptionBased: true });
    expect(r.daysCovered).toBe(60);
    // A dispense for it makes the stand-in unnecessary.
    const filled = computePdc(
      [dispense('d1', MEDS.metformin, '2026-10-02', 30, { prescription: 'rx1' })],
      [rx],
      [],
      diabetes,
      period,
    );
    expect(filled.prescriptionBased).toBe(false);
    expect(filled.daysCovered).toBe(30);
  });

  test('fills before the period are ignored (PQA counts claims in the measurement period only)', () => {
    const r = computePdc(fills('f', MEDS.metformin, '2025-12-15', 3, 30, 30), [], [], diabetes, period);
    expect(r.treatmentStart).toBe('2026-01-14');
    expect(r.fillCount).toBe(2);
  });

  test('a single fill is not eligible; adherent at exactly 0.80', () => {
    const one = computePdc([dispense('d', MEDS.metformin, '2026-12-02', 30)], [], [], diabetes, period);
    expect(one.eligible).toBe(false);
    // 80 covered of 100 days: fills 2026-09-23 (40 days) and 2026-11-22 (40 days); period ends 2026-12-31.
    const r = computePdc(
      [dispense('a', MEDS.metformin, '2026-09-23', 40), dispense('b', MEDS.metformin, '2026-11-22', 40)],
      [],
      [],
      diabetes,
      period,
    );
    expect(r.daysInPeriod).toBe(100);
    expect(r.daysCovered).toBe(80);
    expect(r.pdc).toBe(0.8);
    expect(r.adherent).toBe(true);
  });

  test('medications outside the class are ignored', () => {
    const r = computePdc([dispense('s', MEDS.sertraline, '2026-06-01', 30)], [], [], diabetes, period);
    expect(r.fillCount).toBe(0);
    expect(r.pdc).toBe(0);
  });
});
