import type { Bundle, Observation } from '@medplum/fhirtypes';
import { MongoClient, type Db } from 'mongodb';
import pino from 'pino';
import { search, SearchParameterRegistry } from '../../src/search';
import { dateSpansMarked, markWideDates } from '../../src/search/date-spans';
import { indexedTypes, searchIndexes } from '../../src/search/indexes';
import { SPAN_KEY } from '../../src/search/keys';
import type { CurrentDocument } from '../../src/store/documents';
import { databaseNameFor } from '../support/server';
import { documentOf } from './fixtures';

/**
 * Date windows on the real engine (src/search/compile/date-ranges.ts): values stored before the span
 * marker existed are marked at start-up, and a window split on the marker finds the same
 * Observations as before, wide ones (a month, an open Period) included.
 */
let client: MongoClient;
let db: Db;
const registry = new SearchParameterRegistry();
const dbName = databaseNameFor(__filename);
const options = { maxCount: 1000, defaultCount: 1000, pageSecret: 'windows-secret' };
const logger = pino({ level: 'silent' });
const PHQ9 = { system: 'http://loinc.org', code: '44261-6' };

const observation = (id: string, effective: Partial<Observation>, code = PHQ9): Observation => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { coding: [code] },
  ...effective,
});

/** One a day from 2025-01-01 for 300 days, and the values a short bound alone would miss. */
const stored: Observation[] = [
  ...Array.from({ length: 300 }, (_, d) =>
    observation(`day-${d}`, { effectiveDateTime: new Date(Date.UTC(2025, 0, 1 + d, 9)).toISOString() }),
  ),
  observation('june-month', { effectiveDateTime: '2025-06' }),
  observation('since-march', { effectivePeriod: { start: '2025-03-10' } }),
  observation('spring', { effectivePeriod: { start: '2025-03-01', end: '2025-07-03' } }),
  observation('other-code', { effectiveDateTime: '2025-07-15T10:00:00Z' }, { system: 'http://loinc.org', code: '1-8' }),
];

async function ids(query: string): Promise<string[]> {
  const bundle: Bundle = await search(
    db,
    { resourceType: 'Observation', params: new URLSearchParams(query), baseUrl: 'http://windows.test/fhir' },
    registry,
    options,
  );
  return (bundle.entry ?? []).map((e) => e.resource?.id as string).sort();
}

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  for (const { key, ...rest } of searchIndexes('Observation')) {
    await db.collection('Observation').createIndex(key as Record<string, 1 | -1>, rest);
  }
  // As an earlier version stored them: no span markers.
  const docs = stored.map((resource) => {
    const doc = documentOf({ resource }, registry);
    const date = (doc.sp as Record<string, Record<string, unknown>>).date;
    delete date[SPAN_KEY];
    return doc;
  });
  await db.collection<CurrentDocument>('Observation').insertMany(docs);
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

describe('date windows on the embedded engine', () => {
  it('marks the wide values stored before the marker, once', async () => {
    const before = await ids('code=http://loinc.org|44261-6&date=ge2025-07-01&date=lt2025-08-01');
    expect(await dateSpansMarked(db)).toBe(false);
    expect(await markWideDates(db, indexedTypes(), logger)).toBe(3);
    expect(await dateSpansMarked(db)).toBe(true);
    const wide = await db
      .collection<CurrentDocument>('Observation')
      .find({ 'sp.date.span': 'wide' }, { projection: { _id: 1 } })
      .toArray();
    expect(wide.map((d) => d._id).sort()).toEqual(['june-month', 'since-march', 'spring']);
    expect(await markWideDates(db, indexedTypes(), logger)).toBe(0);
    // Split on the marker now, the same Observations.
    expect(await ids('code=http://loinc.org|44261-6&date=ge2025-07-01&date=lt2025-08-01')).toEqual(before);
  });

  it('finds the short values of the window and every wide value that reaches into it (June ends as July begins)', async () => {
    const july = Array.from({ length: 31 }, (_, d) => `day-${181 + d}`);
    expect(await ids('code=http://loinc.org|44261-6&date=ge2025-07-01&date=lt2025-08-01')).toEqual(
      [...july, 'since-march', 'spring'].sort(),
    );
    expect(await ids('code=http://loinc.org|44261-6&date=gt2025-07-02&date=le2025-07-03')).toEqual([
      'day-183',
      'since-march',
      'spring',
    ]);
    expect(await ids('date=ge2025-07-15&date=lt2025-07-16')).toEqual(['day-195', 'other-code', 'since-march']);
  });
});
