import type { Patient } from '@medplum/fhirtypes';
import { MongoClient, type Db, type Document } from 'mongodb';
import { resourceIndexer } from '../../src/app-context';
import { BackgroundIndexer } from '../../src/search/background-indexes';
import { migrateIndexes, searchIndexPlan, type IndexProgress } from '../../src/search/index-migration';
import { SearchParameterRegistry } from '../../src/search/registry';
import {
  dropSearchParameterIndexes,
  ensureSearchParameterIndexes,
  searchParameterIndexes,
} from '../../src/search/runtime-indexes';
import { databaseNameFor } from '../support/server';

/**
 * The start-up index migration and the indexes of runtime SearchParameters, on the real engine: after
 * the migration, the very first search is answered from an index (on the embedded engine: SQLite
 * searches a complete side table), and nothing is built on the query path.
 */
let client: MongoClient;
let db: Db;
const dbName = databaseNameFor(__filename);
let ferret = false;

const planOf = async (collection: string, filter: Document): Promise<string> =>
  JSON.stringify((await db.collection(collection).find(filter).explain()).queryPlanner);

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  ferret = (await db.admin().command({ buildInfo: 1 })).ferretdbVersion !== undefined;
  // Stored Patients as the server stores them (search values included), before any index exists.
  const registry = new SearchParameterRegistry();
  const index = resourceIndexer(registry);
  const patients: Patient[] = Array.from({ length: 300 }, (_, i) => ({
    resourceType: 'Patient',
    id: `p${i}`,
    identifier: [
      { system: 'urn:mrn', value: `MRN${i}` },
      { system: 'urn:ssn', value: `SSN${i}` },
    ],
    name: [{ family: i % 2 ? 'Rivera' : 'Ríos', given: [`Given${i}`] }],
  }));
  await db
    .collection('Patient')
    .insertMany(patients.map((resource) => ({ _id: resource.id, resource, ...index(resource) }) as Document));
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

describe('start-up index migration', () => {
  it('creates every planned index, reports each with its paths and time, and finds them the next time', async () => {
    const plan = searchIndexPlan(['Patient', 'Observation']);
    const first: IndexProgress[] = [];
    await migrateIndexes(db, plan, (p) => first.push(p));
    const planned = plan.flatMap((p) => p.indexes.map((i) => `${p.collection}.${i.name}`));
    expect(first.map((p) => `${p.collection}.${p.index}`)).toEqual(planned);
    expect(first.every((p) => p.created && p.ms >= 0 && p.paths.length > 0)).toBe(true);
    expect(first.find((p) => p.index === 'sp_name')?.paths).toEqual(['sp.name.n']);
    const names = (await db.collection('Patient').listIndexes().toArray()).map((i) => String(i.name));
    expect(names).toEqual(expect.arrayContaining(['sp_name', 'sp_identifier', 'sp_family']));

    const again: IndexProgress[] = [];
    await migrateIndexes(db, plan, (p) => again.push(p));
    expect(again.some((p) => p.created)).toBe(false);
  });

  it('answers the first search of a second identifier and of a name prefix from an index', async () => {
    const second = { 'sp.identifier.sc': 'urn:ssn|SSN7' };
    const prefix = { 'sp.name.n': { $regex: '^rio' } };
    if (ferret) {
      expect(await planOf('Patient', second)).toMatch(/SEARCH patient_[0-9a-f]+_mk_[0-9a-f]+ USING PRIMARY KEY/);
      expect(await planOf('Patient', prefix)).toMatch(/SEARCH patient_[0-9a-f]+_mk_[0-9a-f]+ USING PRIMARY KEY/);
    }
    expect((await db.collection('Patient').find(second).toArray()).map((d) => d._id)).toEqual(['p7']);
    // Accents stripped at write time: "Ríos" is stored as "rios".
    expect(await db.collection('Patient').countDocuments(prefix)).toBe(150);
  });
});

describe('indexes of a runtime SearchParameter', () => {
  it('builds them on each base type, ready when the call returns, and drops them', async () => {
    const registry = new SearchParameterRegistry();
    const param = {
      ...registry.forType('Patient').find((p) => p.code === 'family'),
      code: 'nickname',
      base: ['Patient', 'Resource'],
      origin: 'runtime',
    } as ReturnType<SearchParameterRegistry['forType']>[number];
    expect(searchParameterIndexes(param)).toEqual([{ key: { 'sp.nickname.n': 1 }, name: 'sp_rt_nickname_n' }]);
    await db
      .collection('Patient')
      .updateOne({ _id: 'p1' } as Document, { $set: { 'sp.nickname': { n: 'bo', one: true } } });
    await ensureSearchParameterIndexes(db, param);
    const names = async () => (await db.collection('Patient').listIndexes().toArray()).map((i) => String(i.name));
    expect(await names()).toContain('sp_rt_nickname_n');
    if (ferret) expect(await planOf('Patient', { 'sp.nickname.n': 'bo' })).toMatch(/_mk_[0-9a-f]+ USING PRIMARY KEY/);
    expect(await db.collection('Patient').countDocuments({ 'sp.nickname.n': 'bo' })).toBe(1);
    await dropSearchParameterIndexes(db, param);
    expect(await names()).not.toContain('sp_rt_nickname_n');
  });
});

describe('an index built while writes go on', () => {
  it('misses no document written during its backfill, and no writer fails on a locked database', async () => {
    const things = db.collection<{ _id: string; tag: string[]; n: number }>('Busy');
    // Enough rows for the backfill to take several chunks.
    await things.insertMany(
      Array.from({ length: 6000 }, (_, i) => ({ _id: `b${i}`, tag: [`t${i % 10}`, 'all'], n: i })),
    );
    const build = things.createIndex({ tag: 1 }, { name: 'by_tag' });
    // Writers insert, update and delete meanwhile, each write acknowledged before the next.
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 40; i++) {
        await things.insertOne({ _id: `w${w}-${i}`, tag: ['new', `t${i % 10}`], n: -1 });
        await things.updateOne({ _id: `b${w * 1000 + i}` }, { $set: { tag: ['moved'] } });
        await things.deleteOne({ _id: `b${w * 1000 + 500 + i}` });
      }
    });
    await Promise.all([build, ...writers]);
    expect(await things.countDocuments({ tag: 'new' })).toBe(160);
    expect(await things.countDocuments({ tag: 'moved' })).toBe(160);
    // 6000 - 160 moved away - 160 deleted; the new ones carry no 'all'.
    expect(await things.countDocuments({ tag: 'all' })).toBe(5680);
    expect(await things.countDocuments({ tag: 't3' })).toBe(600 - 16 - 16 + 16);
    if (ferret) expect(await planOf('Busy', { tag: 'moved' })).toMatch(/_mk_[0-9a-f]+ USING PRIMARY KEY/);
  });
});

describe('indexes for searches nobody planned', () => {
  it('are asked for by the first search, built in the background, and not asked for twice', async () => {
    const indexer = new BackgroundIndexer(db);
    const filter = { $and: [{ 'sp.gender.c': 'female' }, { 'sp.name.n': { $regex: '^rio' } }] };
    indexer.noteQuery('Patient', filter); // returns at once: the search goes on without the index
    indexer.noteQuery('Patient', filter);
    await indexer.idle();
    const names = (await db.collection('Patient').listIndexes().toArray()).map((i) => String(i.name));
    // sp.name.n leads sp_name already; only the gender path was missing.
    expect(names.filter((n) => n.startsWith('auto_'))).toEqual(['auto_sp_gender_c']);
  });
});
