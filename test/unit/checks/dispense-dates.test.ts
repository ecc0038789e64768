import type { CodeableConcept, Resource } from '@medplum/fhirtypes';
import { NDC, RXNORM, loadMedicationClasses } from '../../../src/checks';
import { ReviewContext } from '../../../src/checks/context';
import { dispense, medication, patient, request } from '../../fixtures/checks/builders';

/**
 * dispenseDates(cls): the dates PQA's "prescription claims for" a class count (the PDC-DR insulin
 * exclusion). Unlike fillDates it needs no days' supply and lets no prescription stand in for a dispense.
 */

const classes = loadMedicationClasses();
const glargine: CodeableConcept = {
  coding: [{ system: RXNORM, code: '311041', display: 'insulin glargine 100 UNT/ML Injectable Solution' }],
};
const glipizide: CodeableConcept = {
  coding: [{ system: RXNORM, code: '310490', display: 'glipizide 5 MG Oral Tablet' }],
};

function context(resources: Resource[], date = '2025-12-31'): ReviewContext {
  return new ReviewContext(patient(), [patient(), ...resources], date, '2025-01-01', '2025-12-31', classes);
}

describe('dispenseDates', () => {
  test('counts the period’s dispenses from its first day to its last, once per date', () => {
    const ctx = context([
      dispense('before', glargine, '2024-12-31', 30),
      dispense('first', glargine, '2025-01-01', 30),
      dispense('again', glargine, '2025-01-01', 30),
      dispense('last', glargine, '2025-12-31T18:00:00Z', 30),
      dispense('after', glargine, '2026-01-01', 30),
      dispense('other', glipizide, '2025-06-01', 30),
    ]);
    expect(ctx.dispenseDates('insulin')).toEqual(['2025-01-01', '2025-12-31']);
    expect(ctx.dispenseDates('diabetes-non-insulin')).toEqual(['2025-06-01']);
  });

  test('a dispense without a days’ supply counts; fillDates cannot use it', () => {
    const ctx = context([dispense('d1', glargine, '2025-03-01', undefined)]);
    expect(ctx.dispenseDates('insulin')).toEqual(['2025-03-01']);
    expect(ctx.fillDates('insulin')).toEqual([]);
  });

  test('a prescription does not stand in for a dispense, and a cancelled or declined dispense never reached the patient', () => {
    const prescribed = request('rx1', glargine, '2025-03-01', {
      dispenseRequest: { validityPeriod: { start: '2025-03-01' }, expectedSupplyDuration: { value: 30, code: 'd' } },
    });
    const ctx = context([
      prescribed,
      dispense('c1', glargine, '2025-04-01', 30, { status: 'cancelled' }),
      dispense('c2', glargine, '2025-05-01', 30, { status: 'declined' }),
      dispense('c3', glargine, '2025-06-01', 30, { status: 'entered-in-error' }),
    ]);
    expect(ctx.dispenseDates('insulin')).toEqual([]);
    expect(ctx.fillDates('insulin')).toEqual(['2025-03-01']);
  });

  test('nothing after the review date counts, even inside the period', () => {
    const ctx = context(
      [dispense('d1', glargine, '2025-05-01', 30), dispense('d2', glargine, '2025-07-01', 30)],
      '2025-06-30',
    );
    expect(ctx.dispenseDates('insulin')).toEqual(['2025-05-01']);
  });

  test('a referenced Medication coded by NDC, an ATC code, a ValueSet url and a list of classes', () => {
    const tresiba = medication('m1', { coding: [{ system: NDC, code: '0169-2662-90', display: 'Tresiba' }] }, []);
    delete tresiba.ingredient;
    const ctx = context([
      tresiba,
      dispense('d1', { text: 'see Medication' }, '2025-02-01', 30, {
        medicationCodeableConcept: undefined,
        medicationReference: { reference: 'Medication/m1' },
      }),
      dispense('d2', { coding: [{ system: 'http://www.whocc.no/atc', code: 'A10AE04' }] }, '2025-03-01', 30),
      dispense('d3', glipizide, '2025-04-01', 30),
    ]);
    expect(ctx.dispenseDates('insulin')).toEqual(['2025-02-01', '2025-03-01']);
    expect(ctx.dispenseDates('https://meds-fhir.org/fhir/ValueSet/insulin')).toEqual(['2025-02-01', '2025-03-01']);
    expect(ctx.dispenseDates('insulin,diabetes-non-insulin')).toEqual(['2025-02-01', '2025-03-01', '2025-04-01']);
  });
});
