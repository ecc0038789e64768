import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { errors, fixture, summary, validator } from './helpers';

const validDir = join(__dirname, '..', '..', 'fixtures', 'validation', 'valid');

describe('public R4 examples (test/fixtures/validation/SOURCE.md)', () => {
  it.each(readdirSync(validDir).filter((f) => f.endsWith('.json')))('%s has no errors', (file) => {
    expect(summary(errors(validator().validate(fixture(`valid/${file}`))))).toEqual([]);
  });

  it('a real-world copy whose contained resource is referenced from nowhere fails dom-3', () => {
    const issues = errors(validator().validate(fixture('invalid/medication-uncited-contained.json')));
    expect(summary(issues)).toEqual([['error', 'invariant', 'Medication', 'dom-3']]);
  });

  it('a real-world copy in the STU3 shape (single interpretation) is rejected', () => {
    const issues = errors(validator().validate(fixture('invalid/observation-f001-stu3-interpretation.json')));
    expect(summary(issues)).toEqual([['error', 'structure', 'Observation.interpretation', undefined]]);
  });

  it('dom-6 (narrative) is a warning on Bundle entries and not asked of contained resources', () => {
    const bundle = validator().validate(fixture('valid/synthea-transaction-excerpt.json'));
    expect(bundle.every((i) => i.severity === 'warning' && i.diagnostics === 'dom-6')).toBe(true);
    expect(validator().validate(fixture('valid/medicationrequest-medrx0310.json'))).toEqual([]);
  });
});
