import { MongoClient, type Db, type Document } from 'mongodb';
import { loadCohort } from '../../bench/search-cohort';
import { QUERIES, type BenchQuery } from '../../bench/search-queries';
import { STRING_AND_TOKEN_QUERIES } from '../../bench/search-queries-extra';
import { explainSearch, plannedIndex, search, SearchParameterRegistry } from '../../src/search';
import { ENGINE_INDEXED_PLAN } from '../../src/search/explain';
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

/** The SQLite plan the embedded engine reports for a find, or undefined on a real MongoDB. */
async function sqlitePlan(type: string, filter: Document, sort: Document): Promise<string | undefined> {
  const explained = await db.collection(type).find(filter, { sort, limit: 21 }).explain('queryPlanner');
  const planner = explained.queryPlanner as Document | undefined;
  return planner && 'Plan' in planner ? JSON.stringify(planner.Plan) : undefined;
}

describe('explain plans of the benchmark queries', () => {
  it.each([...QUERIES, ...STRING_AND_TOKEN_QUERIES].map((q) => [q.name, q] as const))(
    '%s uses its intended index',
    async (_name, q) => {
      const query = await benchQuery(q);
      const explained = await explainSearch(db, registry, q.type, query, options);
      expect(explained.plannedIndex).toBe(q.index);
      if (q.page) expect(query).toContain('_cursor=');
      // On the embedded engine, SQLite answers the pre-filter from an index that exists already.
      const plan = await sqlitePlan(q.type, explained.filter, explained.sort);
      if (plan !== undefined) expect(plan).toMatch(ENGINE_INDEXED_PLAN);
    },
  );

  it('bounds the default string search as a prefix of the normalized text', async () => {
    const explained = await explainSearch(db, registry, 'Patient', 'name=R%C3%ADv', options);
    expect(JSON.stringify(explained.filter)).toContain('{"sp.name.n":{"$regex":"^riv"}}');
    expect(explained.plannedIndex).toBe('sp_name');
    // :contains is not a prefix: no index bounds it.
    const contains = await explainSearch(db, registry, 'Patient', 'name:contains=iv', options);
    expect(contains.plannedIndex).toBeUndefined();
    expect(plannedIndex('Patient', { 'sp.name.n': { $regex: '^riv', $options: 'i' } }, { _id: 1 })).toBeUndefined();
    expect(plannedIndex('Patient', { 'sp.name.n': /^riv/ }, { _id: 1 })).toBe('sp_name');
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
