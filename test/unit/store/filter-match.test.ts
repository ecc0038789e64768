import fc from 'fast-check';
import sift from 'sift';
import { filterMatcher } from '../../../src/store/filter-match';

// filterMatcher is sift with a set behind a long `$in` of strings (a practitioner's compartments):
// it must answer exactly as sift does, for every shape a stored document's field can take.
const LIST = Array.from({ length: 40 }, (_, i) => `Patient/p${i}`);

const fieldValue = fc.oneof(
  fc.constantFrom(...LIST, 'Patient/other', '', 'patient/p1'),
  fc.integer(),
  fc.constant(null),
  fc.array(fc.constantFrom(...LIST.slice(0, 5), 'Patient/x', 7), { maxLength: 4 }),
  fc.array(fc.array(fc.constantFrom('Patient/p1', 'Patient/x'), { maxLength: 2 }), { maxLength: 2 }),
  fc.record({ reference: fc.constantFrom('Patient/p1', 'x') }),
);

describe('filterMatcher', () => {
  it('answers a long $in of strings as sift does, whatever the field holds', () => {
    fc.assert(
      fc.property(fc.option(fieldValue, { nil: undefined }), fc.boolean(), (value, nested) => {
        const doc = nested ? { a: { b: value } } : value === undefined ? {} : { compartments: value };
        const filter = nested ? { 'a.b': { $in: LIST } } : { compartments: { $in: LIST } };
        expect(filterMatcher(filter)(doc)).toBe(sift(filter)(doc));
      }),
    );
  });

  it('answers $in inside $and, $or and $nin as sift does', () => {
    const filter = {
      $and: [
        { compartments: { $in: LIST } },
        { $or: [{ label: { $nin: ['R'] } }, { compartments: { $in: LIST.slice(0, 20) } }] },
      ],
    };
    const docs = [
      { compartments: ['Patient/p3'] },
      { compartments: ['Patient/p3'], label: 'R' },
      { compartments: ['Patient/p30'], label: 'R' },
      { compartments: ['Patient/zz'] },
    ];
    expect(docs.map(filterMatcher(filter))).toEqual(docs.map(sift(filter)));
    expect(docs.map(filterMatcher(filter))).toEqual([true, true, false, false]);
  });

  it('leaves a list that is short or holds other types to sift', () => {
    const mixed = { v: { $in: [...LIST, 7, null] } };
    for (const doc of [{ v: 7 }, {}, { v: null }, { v: 'Patient/p2' }, { v: '7' }]) {
      expect(filterMatcher(mixed)(doc)).toBe(sift(mixed)(doc));
    }
    expect(filterMatcher(mixed)({ v: 7 })).toBe(true);
    expect(filterMatcher({ v: { $in: ['a', 'b'] } })({ v: ['b'] })).toBe(true);
  });
});
