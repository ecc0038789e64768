import type { MedicationRequest, ValueSet } from '@medplum/fhirtypes';
import { ATC, RXNORM, loadMedicationClasses } from '../../../src/checks';
import { indexResources, medicationOf } from '../../../src/checks/medications';
import { MEDS, medication, request } from '../../fixtures/checks/builders';

const classes = loadMedicationClasses();

function inClass(key: string, r: MedicationRequest, extra: Parameters<typeof indexResources>[0] = []): boolean {
  return classes.matcher(key).matches(medicationOf(r, indexResources([r, ...extra])));
}

describe('medication classes', () => {
  test('the issue’s classes are shipped, with adherence tracking only where it makes sense', () => {
    const keys = classes.classes().map((c) => c.key);
    for (const k of [
      'buprenorphine',
      'methadone',
      'naltrexone',
      'opioid-analgesics',
      'benzodiazepines',
      'antidepressants',
      'statins',
      'ras-antagonists',
      'diabetes-non-insulin',
    ]) {
      expect(keys).toContain(k);
    }
    expect(classes.getClass('opioid-analgesics')?.adherence).toBe(false);
    // Insulin is a class for the measures to name (PQA's PDC-DR exclusion), not one whose PDC is tracked.
    expect(classes.getClass('insulin')?.adherence).toBe(false);
    expect(classes.getClass('https://meds-fhir.org/fhir/ValueSet/insulin')?.key).toBe('insulin');
    expect(classes.getClass('buprenorphine')).toMatchObject({
      adherence: true,
      refillGraceDays: 7,
      followUpWindowDays: 7,
    });
    expect(classes.getClass('https://meds-fhir.org/fhir/ValueSet/antidepressants')?.key).toBe('antidepressants');
  });

  test('CDC RxNorm products (through an included value set), RxNorm ingredients and ATC codes', () => {
    expect(inClass('buprenorphine', request('a', MEDS.buprenorphineNaloxone8, '2026-01-01'))).toBe(true);
    expect(inClass('opioid-analgesics', request('b', MEDS.buprenorphineNaloxone8, '2026-01-01'))).toBe(true);
    expect(inClass('benzodiazepines', request('c', MEDS.alprazolam05, '2026-01-01'))).toBe(true);
    expect(inClass('antidepressants', request('d', MEDS.sertraline, '2026-01-01'))).toBe(true);
    expect(inClass('naltrexone', request('e', MEDS.naltrexone, '2026-01-01'))).toBe(true);
    expect(inClass('statins', request('f', MEDS.sertraline, '2026-01-01'))).toBe(false);
    expect(inClass('buprenorphine', request('g', MEDS.oxycodone10, '2026-01-01'))).toBe(false);
  });

  test('an ATC group includes its descendants by prefix', () => {
    const rasCode = (code: string): MedicationRequest =>
      request('r', { coding: [{ system: ATC, code }] }, '2026-01-01');
    expect(inClass('ras-antagonists', rasCode('C09AA03'))).toBe(true); // lisinopril
    expect(inClass('ras-antagonists', rasCode('C09CA01'))).toBe(true); // an ARB
    expect(inClass('ras-antagonists', rasCode('C08CA01'))).toBe(false); // a calcium channel blocker
    expect(inClass('antidepressants', rasCode('N06AB06'))).toBe(true);
    expect(inClass('antidepressants', rasCode('N05BA01'))).toBe(false);
    // A10A insulins and analogues, A10B the other blood glucose lowering drugs: each in one class only.
    expect(inClass('insulin', rasCode('A10AE04'))).toBe(true); // insulin glargine
    expect(inClass('insulin', rasCode('A10AB04'))).toBe(true); // insulin lispro
    expect(inClass('diabetes-non-insulin', rasCode('A10AE04'))).toBe(false);
    expect(inClass('insulin', rasCode('A10BB07'))).toBe(false); // glipizide
    expect(inClass('diabetes-non-insulin', rasCode('A10BB07'))).toBe(true);
  });

  test('membership through an ingredient of a referenced or contained Medication', () => {
    const combo = medication('combo', { text: 'house combination tablet' }, [
      { code: { coding: [{ system: RXNORM, code: '6809', display: 'metformin' }] }, mg: 500 },
      { code: { text: 'an excipient' } },
    ]);
    const referenced = request('r1', MEDS.metformin, '2026-01-01', {
      medicationCodeableConcept: undefined,
      medicationReference: { reference: 'Medication/combo' },
    });
    expect(inClass('diabetes-non-insulin', referenced, [combo])).toBe(true);
    const contained = request('r2', MEDS.metformin, '2026-01-01', {
      medicationCodeableConcept: undefined,
      medicationReference: { reference: '#m' },
      contained: [{ ...combo, id: 'm' }],
    });
    expect(inClass('diabetes-non-insulin', contained)).toBe(true);
    // An ingredient that itself references a Medication resource.
    const ingredientMed = medication('metformin-in', MEDS.metformin, []);
    const viaRef = medication('combo2', { text: 'combination' }, []);
    viaRef.ingredient = [{ itemReference: { reference: 'Medication/metformin-in' } }];
    const r3 = request('r3', MEDS.metformin, '2026-01-01', {
      medicationCodeableConcept: undefined,
      medicationReference: { reference: 'Medication/combo2' },
    });
    expect(inClass('diabetes-non-insulin', r3, [viaRef, ingredientMed])).toBe(true);
  });

  test('a value set added at runtime becomes a class; adding one invalidates expansions that include it', () => {
    const registry = loadMedicationClasses();
    const lithium: ValueSet = {
      resourceType: 'ValueSet',
      id: 'lithium',
      url: 'https://example.org/ValueSet/lithium',
      status: 'active',
      title: 'Lithium',
      compose: { include: [{ system: ATC, concept: [{ code: 'N05AN01' }] }] },
    };
    const cls = registry.addValueSet(lithium, { adherence: true, refillGraceDays: 3 });
    expect(cls).toMatchObject({ key: 'lithium', refillGraceDays: 3 });
    expect(registry.containsCoding('lithium', { system: ATC, code: 'N05AN01' })).toBe(true);
    const wrapper: ValueSet = {
      resourceType: 'ValueSet',
      url: 'https://example.org/ValueSet/mood',
      status: 'active',
      compose: { include: [{ valueSet: [lithium.url!] }] },
    };
    registry.addValueSet(wrapper);
    expect(registry.containsCoding(wrapper.url!, { system: ATC, code: 'N05AN01' })).toBe(true);
    expect(() => registry.addValueSet({ resourceType: 'ValueSet', status: 'active' } as ValueSet)).toThrow(/url/);
  });

  test('drug identity ignores strength, brand and salt', () => {
    const index = indexResources([]);
    const a = medicationOf(request('a', MEDS.oxycodone10, '2026-01-01'), index);
    const b = medicationOf(request('b', MEDS.oxycodone5, '2026-01-01'), index);
    const c = medicationOf(request('c', MEDS.buprenorphineNaloxone8, '2026-01-01'), index);
    expect(a.drugKey).toBe('oxycodone');
    expect(b.drugKey).toBe(a.drugKey);
    expect(c.drugKey).toBe('buprenorphine+naloxone');
    expect(c.ingredients.map((i) => [i.name, i.strength?.value])).toEqual([
      ['buprenorphine', 8],
      ['naloxone', 2],
    ]);
  });
});
