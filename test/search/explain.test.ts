import { MongoClient, type Db } from 'mongodb';
import { loadCohort } from '../../bench/search-cohort';
import { QUERIES, type BenchQuery } from '../../bench/search-queries';
import { explainSearch, plannedIndex, search, SearchParameterRegistry } from '../../src/search';
import { databaseNameFor } from '../support/server';

let client: MongoClient;
let db: Db;
const registry = new SearchParameterRegistry();
const dbName = databaseNameFor(__filename);
const options = { maxCount: 100, defaultCount: 20, pageSecret: 'explain-secret' };
const BASE = 'http://explain.test/fhir';
// Enough patients for the analyst query (about 1.5 active MedicationRequests each) to have a page 2.
const PATIENTS = 30;

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  await loadCohort(db, registry, PATIENTS, () => undefined);
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

/** The query string as the benchmark sends it; for a deep-paging query, that of a real second page. */
async function benchQuery(q: BenchQuery): Promise<string> {
  const first = q.query(1);
  if (!q.page) return first;
  const bundle = await search(
    db,
    { resourceType: q.type, params: new URLSearchParams(first), baseUrl: BASE },
    registry,
    options,
  );
  const next = bundle.link?.find((l) => l.relation === 'next')?.url;
  if (!next) throw new Error(`${q.name}: no second page with ${PATIENTS} patients`);
  return new URL(next).search.slice(1);
}

describe('explain plans of the benchmark queries', () => {
  it.each(QUERIES.map((q) => [q.name, q] as const))('%s uses its intended index', async (_name, q) => {
    const query = await benchQuery(q);
    const explained = await explainSearch(db, registry, q.type, query, options);
    expect(explained.plannedIndex).toBe(q.index);
    if (q.page) expect(query).toContain('_cursor=');
  });

  it('the deep page is bounded by the keyset condition as well as the status', async () => {
    const q = QUERIES.find((x) => x.page) as BenchQuery;
    const explained = await explainSearch(db, registry, q.type, await benchQuery(q), options);
    const text = JSON.stringify(explained.filter);
    expect(text).toContain('"sp.status.c":"active"');
    expect(text).toContain('"sp._sort.authoredon":{"$lt"');
    expect(explained.sort).toEqual({ 'sp._sort.authoredon': -1, _id: -1 });
  });

  it('reports no index for a parameter no index covers, so a collection scan is caught', async () => {
    const explained = await explainSearch(db, registry, 'MedicationRequest', 'intent=order', options);
    expect(explained.plannedIndex).toBeUndefined();
    // A sort on an unindexed parameter does not help either.
    const sorted = await explainSearch(db, registry, 'MedicationRequest', 'intent=order&_sort=intent', options);
    expect(sorted.plannedIndex).toBeUndefined();
  });

  it('uses the built-in indexes for _id, _lastUpdated sorts and compartment membership', async () => {
    expect((await explainSearch(db, registry, 'Observation', '_id=obs1-0', options)).plannedIndex).toBe('_id');
    expect((await explainSearch(db, registry, 'Observation', '_sort=-_lastUpdated', options)).plannedIndex).toBe(
      'last_updated',
    );
    expect(plannedIndex('Observation', { $and: [{ compartments: 'Patient/p1' }, { status: 'x' }] }, { _id: 1 })).toBe(
      'compartments',
    );
  });

  it('does not count $ne or conditions under $or as index bounds', () => {
    expect(plannedIndex('CarePlan', { 'sp.status.c': { $ne: 'active' } }, { _id: 1 })).toBeUndefined();
    expect(plannedIndex('CarePlan', { $or: [{ 'sp.status.c': 'active' }, { x: 1 }] }, { _id: 1 })).toBeUndefined();
  });
});
