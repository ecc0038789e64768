import type { Measure, Patient, ValueSet } from '@medplum/fhirtypes';
import { loadMedicationClasses } from '../../../src/checks';
import { compileMeasure } from '../../../src/measures/definition';
import { dryRun, evaluatePatient } from '../../../src/measures/evaluate';
import { shippedMeasures } from '../../../src/modules/measures';
import { createValidator } from '../../../src/validation';

/** The shipped Measures and ValueSets (measures/) are valid R4, compile, and name only what exists. */
const shipped = shippedMeasures();
const measures = shipped.filter((r): r is Measure => r.resourceType === 'Measure');
const valueSets = shipped.filter((r): r is ValueSet => r.resourceType === 'ValueSet');

describe('shipped measures', () => {
  it('are the six of issue 13, under their canonical urls', () => {
    expect(measures.map((m) => m.url).sort()).toEqual(
      ['cob', 'ohd', 'oud-continuity', 'pdc-diabetes', 'pdc-ras', 'pdc-statins'].map(
        (id) => `https://meds-fhir.org/fhir/Measure/${id}`,
      ),
    );
  });

  it('are valid R4', () => {
    const validator = createValidator();
    for (const resource of shipped) {
      const errors = validator.validate(resource).filter((i) => i.severity === 'error' || i.severity === 'fatal');
      expect({ id: resource.id, errors }).toEqual({ id: resource.id, errors: [] });
    }
  });

  it('compile, and evaluate on a patient without data (every class and value set they name exists)', () => {
    const classes = loadMedicationClasses();
    for (const vs of valueSets) classes.addValueSet(vs);
    const patient: Patient = { resourceType: 'Patient', id: 'empty', birthDate: '1970-01-01' };
    for (const measure of measures) {
      dryRun(compileMeasure(measure), classes);
      const result = evaluatePatient(
        compileMeasure(measure),
        patient,
        [patient],
        { start: '2025-01-01', end: '2025-12-31' },
        classes,
      );
      expect(result.groups[0].populations).toEqual([]);
    }
    const named = JSON.stringify(measures).match(/https:\/\/meds-fhir\.org\/fhir\/ValueSet\/[a-z-]+/g) ?? [];
    // Shipped with the measures (measures/) or with the classes (terminology/: sacubitril/valsartan).
    for (const url of named) expect(() => classes.containsCoding(url, { system: 'urn:x', code: 'x' })).not.toThrow();
  });

  it('match ICD-10-CM exclusion codes by their ranges', () => {
    const classes = loadMedicationClasses();
    for (const vs of valueSets) classes.addValueSet(vs);
    const icd = (code: string) => ({ system: 'http://hl7.org/fhir/sid/icd-10-cm', code });
    const cancer = 'https://meds-fhir.org/fhir/ValueSet/cancer';
    const sickle = 'https://meds-fhir.org/fhir/ValueSet/sickle-cell-disease';
    expect(['C00.0', 'C50.911', 'C4A.9', 'C7A.00', 'C96.9'].map((c) => classes.containsCoding(cancer, icd(c)))).toEqual(
      [true, true, true, true, true],
    );
    expect(['C97', 'D24.1', 'D03.9'].map((c) => classes.containsCoding(cancer, icd(c)))).toEqual([false, false, false]);
    expect(
      ['D57.00', 'D57.1', 'D57.219', 'D57.419', 'D57.80'].every((c) => classes.containsCoding(sickle, icd(c))),
    ).toBe(true);
    expect(['D57.3', 'D58.0'].some((c) => classes.containsCoding(sickle, icd(c)))).toBe(false);
  });
});
