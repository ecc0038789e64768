import type { Bundle, StructureDefinition } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { compile } from 'fhirpath';
import * as r4Model from 'fhirpath/fhir-context/r4';
import { loadR4Bundle } from '../../../src/fhir/definitions';
import { compileFast, DELEGATE } from '../../../src/validation/fast-fhirpath';

/** The invariants of the types a medication-management resource is made of. */
const TYPES = new Set([
  'Timing',
  'Quantity',
  'SimpleQuantity',
  'Duration',
  'Period',
  'Range',
  'Ratio',
  'Reference',
  'Dosage',
  'Age',
  'Count',
  'Extension',
  'Narrative',
  'Identifier',
  'Attachment',
  'Annotation',
]);

function invariants(): { key: string; base: string; expression: string }[] {
  const out: { key: string; base: string; expression: string }[] = [];
  const bundle: Bundle = loadR4Bundle('profiles-types.json');
  for (const entry of bundle.entry ?? []) {
    const sd = entry.resource as StructureDefinition;
    if (!TYPES.has(sd.id ?? '')) continue;
    for (const e of sd.snapshot?.element ?? []) {
      for (const c of e.constraint ?? []) {
        if (c.expression && c.key !== 'ele-1' && !out.some((o) => o.key === c.key)) {
          out.push({ key: c.key, base: sd.id === 'SimpleQuantity' ? 'Quantity' : e.path, expression: c.expression });
        }
      }
    }
  }
  return out;
}

/** Random JSON nodes built from the names the expression mentions, so both sides have something to look at. */
function nodes(expression: string): fc.Arbitrary<Record<string, unknown>> {
  const names = [...new Set(expression.match(/[A-Za-z][A-Za-z0-9]*/g) ?? [])].filter((n) => n.length > 1).slice(0, 8);
  const primitive = fc.oneof(
    fc.integer({ min: -3, max: 3 }),
    fc.constantFrom('C', 'AC', 'http://unitsofmeasure.org', '#a', 'x', '1'),
    fc.boolean(),
  );
  const value = fc.oneof(
    primitive,
    fc.array(primitive, { minLength: 1, maxLength: 2 }),
    fc.dictionary(fc.constantFrom(...names), primitive, { maxKeys: 2 }),
  );
  return fc.dictionary(fc.constantFrom(...names), value, { maxKeys: 4 });
}

describe('fast-fhirpath agrees with fhirpath.js', () => {
  const cases = invariants().filter((c) => compileFast(c.expression, c.base));

  it('covers most invariants of the medication data types', () => {
    expect(cases.length).toBeGreaterThan(20);
  });

  it.each(cases.map((c) => [c.key, c]))('%s', (_key, c) => {
    const fast = compileFast(c.expression, c.base)!;
    const slow = compile({ base: c.base, expression: c.expression }, r4Model, { traceFn: () => undefined });
    fc.assert(
      fc.property(nodes(c.expression), (node) => {
        let expected: boolean;
        try {
          const result = slow(node, { resource: node, rootResource: node }) as unknown[];
          if (result.length > 1) return; // not a boolean: the validator treats it separately
          expected = result.length === 0 ? true : result[0] === true;
        } catch {
          return; // fhirpath.js rejects the input: nothing to compare
        }
        let actual: boolean;
        try {
          actual = fast(node);
        } catch (e) {
          if (e === DELEGATE) return;
          throw e;
        }
        expect(actual).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });
});
