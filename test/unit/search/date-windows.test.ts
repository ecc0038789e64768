import type { Observation } from '@medplum/fhirtypes';
import fc from 'fast-check';
import type { Db } from 'mongodb';
import sift from 'sift';
import {
  compileFilter,
  extractSearchIndex,
  parseSearch,
  SearchParameterRegistry,
  type CompileContext,
} from '../../../src/search';
import { withoutImplied } from '../../../src/search/compile/date-ranges';

/**
 * Date windows split on the span marker (src/search/compile/date-ranges.ts) must select exactly what
 * the parameters compiled one by one select, for every kind of stored value: instants, days, months,
 * years, Periods (open ones too) and several values on one resource.
 */
const registry = new SearchParameterRegistry();
const ctx = (dateSpans: boolean): CompileContext => ({
  db: {} as Db,
  registry,
  baseUrl: 'http://x/fhir',
  now: new Date('2025-06-01T00:00:00Z'),
  lenient: false,
  ignored: [],
  elemMatch: false,
  dateSpans,
});
const compile = (query: string, dateSpans: boolean) =>
  compileFilter(ctx(dateSpans), 'Observation', parseSearch(new URLSearchParams(query)).params);

const day = fc.integer({ min: 0, max: 3 }).map((d) => new Date(Date.UTC(2025, 5, 1) + d * 86_400_000));
const iso = (d: Date) => d.toISOString();
/** A stored effective[x] value: an instant, a day, a month, a year, or a Period. */
const effective = fc.oneof(
  fc
    .tuple(day, fc.integer({ min: 0, max: 86_399 }))
    .map(([d, s]) => ({ effectiveDateTime: iso(new Date(d.getTime() + s * 1000)) })),
  day.map((d) => ({ effectiveDateTime: iso(d).slice(0, 10) })),
  day.map((d) => ({ effectiveDateTime: iso(d).slice(0, 7) })),
  day.map((d) => ({ effectiveDateTime: iso(d).slice(0, 4) })),
  fc.tuple(day, fc.integer({ min: 0, max: 60 }), fc.boolean()).map(([d, length, open]) => ({
    effectivePeriod: open
      ? { start: iso(d) }
      : { start: iso(d), end: iso(new Date(d.getTime() + length * 43_200_000)) },
  })),
);
/** One value, or several as a Timing's events (each indexed as a value of its own). */
const observation = fc
  .tuple(effective, fc.oneof({ weight: 4, arbitrary: fc.constant([]) }, fc.array(day, { minLength: 1, maxLength: 2 })))
  .map(([value, events]): Observation => {
    const base: Observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, ...value };
    if (!events.length) return base;
    const { effectiveDateTime: _d, effectivePeriod: _p, ...rest } = base;
    return { ...rest, effectiveTiming: { event: events.map((e) => iso(e).slice(0, 10)) } };
  });
const prefix = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('ge', 'gt', 'le', 'lt') },
  fc.constantFrom('sa', 'eb', 'ne', 'eq', 'ap', ''),
);
/** A search value at day or second precision (any second of the day, so that instants fall on both sides). */
const bound = fc
  .tuple(prefix, day, fc.integer({ min: 0, max: 86_399 }), fc.boolean())
  .map(
    ([p, d, s, seconds]) =>
      `date=${p}${seconds ? iso(new Date(d.getTime() + s * 1000)).slice(0, 19) : iso(d).slice(0, 10)}`,
  );

describe('date windows split on the span marker', () => {
  it('select the same stored values as the parameters compiled one by one', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(observation, { minLength: 1, maxLength: 6 }),
        fc.array(bound, { minLength: 2, maxLength: 3 }),
        async (resources, bounds) => {
          const query = bounds.join('&');
          const docs = resources.map((resource) => ({ sp: extractSearchIndex(resource, registry) }));
          const split = sift(await compile(query, true));
          const plain = sift(await compile(query, false));
          expect(docs.map((d) => split(d))).toEqual(docs.map((d) => plain(d)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  /** The branches of the window's `$or`, dates as ISO strings. */
  async function windowBranches(query: string): Promise<Record<string, Record<string, string> | string>[]> {
    const filter = await compile(query, true);
    const window = (filter.$and as Record<string, unknown>[])[1];
    const iso = (o: Record<string, Date>) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.toISOString()]));
    return (window.$or as Record<string, Record<string, Date> | string>[]).map((b) =>
      Object.fromEntries(Object.entries(b).map(([k, v]) => [k, typeof v === 'string' ? v : iso(v)])),
    );
  }

  it('turn a month window into bounded ranges of the start, and the wide values looked up by their marker', async () => {
    // At day precision the short values' branch (lo > 07-01, hi > 07-02) lies inside lo >= 07-01: left out.
    expect(await windowBranches('date=ge2025-07-01&date=lt2025-08-01')).toEqual([
      {
        'sp.date.span': 'wide',
        'sp.date.lo': { $lt: '2025-08-01T00:00:00.000Z' },
        'sp.date.hi': { $gt: '2025-07-02T00:00:00.000Z' },
      },
      { 'sp.date.lo': { $gte: '2025-07-01T00:00:00.000Z', $lt: '2025-08-01T00:00:00.000Z' } },
    ]);
    // At second precision it reaches a day further back, and is kept.
    expect(await windowBranches('date=ge2025-07-01T10:00:00Z&date=lt2025-08-01')).toEqual([
      {
        'sp.date.span': 'wide',
        'sp.date.lo': { $lt: '2025-08-01T00:00:00.000Z' },
        'sp.date.hi': { $gt: '2025-07-01T10:00:01.000Z' },
      },
      {
        'sp.date.lo': { $gt: '2025-06-30T10:00:01.000Z', $lt: '2025-08-01T00:00:00.000Z' },
        'sp.date.hi': { $gt: '2025-07-01T10:00:01.000Z' },
      },
      { 'sp.date.lo': { $gte: '2025-07-01T10:00:00.000Z', $lt: '2025-08-01T00:00:00.000Z' } },
    ]);
    // Without the marker on every stored value, the parameters are compiled one by one.
    expect(await compile('date=ge2025-07-01&date=lt2025-08-01', false)).toEqual({
      $and: [
        { deleted: { $ne: true } },
        {
          $or: [
            { 'sp.date.hi': { $gt: new Date('2025-07-02T00:00:00Z') } },
            { 'sp.date.lo': { $gte: new Date('2025-07-01T00:00:00Z') } },
          ],
        },
        { 'sp.date.lo': { $lt: new Date('2025-08-01T00:00:00Z') } },
      ],
    });
  });
});

describe('alternatives another one covers', () => {
  const x = new Date('2025-07-01T00:00:00Z');
  const later = new Date('2025-07-01T00:00:01Z');
  it('are left out, and only those', () => {
    // lo > X lies inside lo >= X, not the other way round; equal ones are kept once.
    expect(withoutImplied([{ lo: { $gt: x } }, { lo: { $gte: x } }])).toEqual([{ lo: { $gte: x } }]);
    expect(withoutImplied([{ lo: { $gte: x } }, { lo: { $gt: x } }])).toEqual([{ lo: { $gte: x } }]);
    expect(withoutImplied([{ lo: { $gte: x } }, { lo: { $gte: x } }])).toEqual([{ lo: { $gte: x } }]);
    expect(withoutImplied([{ lo: { $gte: later } }, { lo: { $gt: x } }])).toEqual([{ lo: { $gt: x } }]);
    // A condition on another field, or a marker, narrows: the wider one does not cover it away.
    expect(withoutImplied([{ lo: { $gte: x } }, { lo: { $gte: x }, hi: { $lt: later } }])).toEqual([
      { lo: { $gte: x } },
    ]);
    expect(withoutImplied([{ lo: { $lt: x } }, { lo: { $gt: x } }])).toEqual([{ lo: { $lt: x } }, { lo: { $gt: x } }]);
    expect(withoutImplied([{ span: 'wide', lo: { $lt: x } }, { lo: { $lt: later } }])).toEqual([
      { lo: { $lt: later } },
    ]);
    expect(withoutImplied([{ span: 'wide' }, { lo: { $lt: later } }])).toEqual([
      { span: 'wide' },
      { lo: { $lt: later } },
    ]);
  });
});
