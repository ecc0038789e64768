import { type Document, MongoClient, ObjectId } from 'mongodb';
import { databaseNameFor } from '../support/server';

/**
 * The embedded engine answers a find with a sort and a limit from SQLite's ORDER BY and LIMIT
 * (tools/ferretdb/patch/order_medsfhir.go) when its filter is exact in SQL and its sort keys have
 * values SQLite orders as MongoDB does; it marks such an answer with `medsfhirOrderPushdown`. Each case
 * runs a find in that shape and its twin, the same filter with a condition the engine does not
 * translate exactly (`_id: {$exists: true}`, true of every document), which FerretDB answers as before
 * (every candidate decoded and sorted in Go), and compares both with MongoDB's order computed here.
 * The sort values hit the edges: missing, null, a path through a scalar, numbers (integers and
 * doubles), empty, upper-case and non-ASCII text, ObjectIds, booleans, dates, ties broken by _id,
 * deleted documents; a second collection holds values SQLite cannot order as MongoDB does (arrays,
 * documents), where the engine must decline unless the filter leaves them out.
 */
let client: MongoClient;
let db: ReturnType<MongoClient['db']>;
let ferret = false;
const dbName = databaseNameFor(__filename);
type Doc = { _id: string } & Document;

const d = (iso: string) => new Date(iso);
const OID_A = new ObjectId('652f1c2e9b1e8a0012345678');
const OID_B = new ObjectId('752f1c2e9b1e8a0012345678');
const sortOf = (w: unknown, at?: Date) => ({ _sort: { w, ...(at ? { at } : {}) } });

const DOCS: Doc[] = [
  { _id: 'a1', sp: { ...sortOf('beta', d('2024-03-01T00:00:00Z')), status: { c: 'active' } } },
  { _id: 'a2', sp: { ...sortOf('beta', d('2024-03-01T00:00:00Z')), status: { c: 'active' } } },
  { _id: 'a3', sp: { ...sortOf('alpha', d('2023-01-01T00:00:00Z')), status: { c: 'active' } } },
  { _id: 'a4', sp: { status: { c: 'active' } } },
  { _id: 'a5', sp: { ...sortOf(null), status: { c: 'active' } } },
  { _id: 'a6', sp: { ...sortOf(5, d('1969-12-31T23:59:59Z')), status: { c: 'active' } } },
  { _id: 'a7', sp: { ...sortOf(2.5), status: { c: 'stopped' } } },
  { _id: 'a8', sp: { ...sortOf(d('2024-01-01T00:00:00Z'), d('2025-01-01T00:00:00Z')), status: { c: 'active' } } },
  { _id: 'a9', sp: { ...sortOf(d('1960-01-01T00:00:00Z')), status: { c: 'stopped' } } },
  { _id: 'b1', sp: { ...sortOf(true), status: { c: 'active' } } },
  { _id: 'b2', sp: { ...sortOf(false) } },
  { _id: 'b3', sp: { ...sortOf(OID_B), status: { c: 'active' } } },
  { _id: 'b4', sp: { ...sortOf(OID_A), status: { c: 'stopped' } } },
  { _id: 'c1', sp: { ...sortOf('Zeta', d('2024-03-01T00:00:00Z')), status: { c: 'stopped' } } },
  { _id: 'c2', sp: { ...sortOf('ärger'), status: { c: 'active' } } },
  { _id: 'c3', sp: { ...sortOf(''), status: { c: 'active' } } },
  { _id: 'c4', sp: { _sort: 'scalar', status: { c: 'active' } } },
  { _id: 'c5', sp: { ...sortOf(5), status: { c: 'active' } } },
  { _id: 'c6', sp: { ...sortOf(-1), status: { c: 'active' } } },
  { _id: 'd1', sp: { ...sortOf('aaa', d('2030-01-01T00:00:00Z')), status: { c: 'active' } }, deleted: true },
  { _id: 'd2', sp: { ...sortOf('beta'), status: { c: 'active' } }, deleted: false },
  { _id: 'e1', sp: { ...sortOf('beta', d('2024-03-01T00:00:00Z')), status: { c: 'active' } } },
];

/** Values SQLite cannot order as MongoDB does (MongoDB sorts by an array's least or greatest element). */
const MIXED: Doc[] = [
  { _id: 'm1', sp: { ...sortOf('beta'), status: { c: 'active' } } },
  { _id: 'm2', sp: { ...sortOf(['zed', 'abc']), status: { c: 'stopped' } } },
  { _id: 'm3', sp: { ...sortOf({ x: 1 }), status: { c: 'stopped' } } },
  { _id: 'm4', sp: { ...sortOf('alpha'), status: { c: 'active' } } },
  { _id: 'm5', sp: { _sort: [{ w: 'aaa' }], status: { c: 'stopped' } } },
];

/**
 * The sort values keyset paging meets: no booleans (`{path: null}` cannot tell them from missing in
 * SQL) and no ObjectIds (their text passes a string bound), where the engine declines.
 */
const KEYSET = DOCS.filter((doc) => !['b1', 'b2', 'b3', 'b4'].includes(doc._id));

const W = 'sp._sort.w';
const AT = 'sp._sort.at';

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  ferret = (await db.admin().command({ buildInfo: 1 })).ferretdbVersion !== undefined;
  for (const [name, docs] of [
    ['Sorted', DOCS],
    ['Mixed', MIXED],
    ['Keyset', KEYSET],
  ] as const) {
    // Half before the indexes, half after.
    await db.collection<Doc>(name).insertMany(docs.filter((_, i) => i % 2 === 0));
    await db.collection(name).createIndex({ 'sp.status.c': 1 });
    await db.collection(name).createIndex({ [W]: -1, _id: -1 });
    await db.collection(name).createIndex({ [AT]: -1, _id: -1 });
    await db.collection<Doc>(name).insertMany(docs.filter((_, i) => i % 2 === 1));
  }
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

// MongoDB's sort order, for the types these cases use.
const TYPE_RANK = (v: unknown): number => {
  if (v === undefined || v === null) return 1;
  if (typeof v === 'number') return 2;
  if (typeof v === 'string') return 3;
  if (v instanceof ObjectId) return 7;
  if (typeof v === 'boolean') return 8;
  if (v instanceof Date) return 9;
  throw new Error(`unexpected sort value ${String(v)}`);
};
function compareValues(a: unknown, b: unknown): number {
  const rank = TYPE_RANK(a) - TYPE_RANK(b);
  if (rank !== 0) return rank;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return Buffer.compare(Buffer.from(a), Buffer.from(b));
  if (a instanceof ObjectId && b instanceof ObjectId) return Buffer.compare(a.id, b.id);
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  return 0;
}
/** The value of a dotted path through documents only (missing through anything else). */
function at(doc: Document, path: string): unknown {
  let value: unknown = doc;
  for (const segment of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}
function expected(docs: Doc[], keep: (doc: Doc) => boolean, sort: Record<string, 1 | -1>, skip: number, limit: number) {
  const sorted = docs.filter(keep).sort((a, b) => {
    for (const [path, direction] of Object.entries(sort)) {
      const c = compareValues(at(a, path), at(b, path));
      if (c !== 0) return c * direction;
    }
    return 0;
  });
  return sorted.slice(skip, skip + limit).map((doc) => doc._id);
}

/**
 * The find command's first batch and whether the engine chose its rows in SQL (a sort on `_id` alone
 * walks the `_id` index, whatever the filter: test/store/engine-id-order.test.ts).
 */
async function find(collection: string, filter: Document, sort: Document, limit: number, skip = 0) {
  const answer = await db.command({ find: collection, filter, sort, limit, skip, batchSize: 1000 });
  const batch = (answer.cursor as { firstBatch: Doc[] }).firstBatch;
  const pushed = answer.medsfhirOrderPushdown === true || answer.medsfhirIdOrder === true;
  return { docs: batch, ids: batch.map((doc) => doc._id), pushed };
}

/** A sort the `_id` index answers: its twin (a filter not exact in SQL) is walked too. */
const byIdOnly = (sort: Document) => Object.keys(sort).length === 1 && '_id' in sort;

/** The same filter with a condition true of every document that the engine does not answer in SQL. */
const twin = (filter: Document): Document => ({ $and: [filter, { _id: { $exists: true } }] });

const FILTERS: [string, Document, (doc: Doc) => boolean][] = [
  ['no filter', {}, () => true],
  ['not deleted', { deleted: { $ne: true } }, (doc) => doc.deleted !== true],
  [
    'not deleted and active',
    { $and: [{ deleted: { $ne: true } }, { 'sp.status.c': 'active' }] },
    (doc) => doc.deleted !== true && at(doc, 'sp.status.c') === 'active',
  ],
  ['status in', { 'sp.status.c': { $in: ['stopped', 'other'] } }, (doc) => at(doc, 'sp.status.c') === 'stopped'],
  // The label filter of an uncleared requester: a post test beside the row check (missing matches).
  [
    'not deleted, status not in',
    { deleted: { $ne: true }, 'sp.status.c': { $nin: ['stopped', 'other'] } },
    (doc) => doc.deleted !== true && at(doc, 'sp.status.c') !== 'stopped',
  ],
];
const SORTS: Record<string, 1 | -1>[] = [
  { _id: 1 },
  { _id: -1 },
  { [W]: 1, _id: 1 },
  { [W]: -1, _id: -1 },
  { [W]: 1, _id: -1 },
  { [W]: -1, _id: 1 },
  { [AT]: -1, _id: -1 },
  { [AT]: 1, _id: 1 },
];
const PAGES: [number, number][] = [
  [3, 0],
  [4, 2],
  [100, 0],
  [2, 15],
  [5, 40],
];

describe('sorted, limited finds answered in SQL', () => {
  for (const [name, filter, keep] of FILTERS) {
    for (const sort of SORTS) {
      test(`${name}, sort ${JSON.stringify(sort)}`, async () => {
        for (const [limit, skip] of PAGES) {
          const want = expected(DOCS, keep, sort, skip, limit);
          const pushed = await find('Sorted', filter, sort, limit, skip);
          const before = await find('Sorted', twin(filter), sort, limit, skip);
          expect({ limit, skip, ids: pushed.ids }).toEqual({ limit, skip, ids: want });
          expect({ limit, skip, ids: before.ids }).toEqual({ limit, skip, ids: want });
          expect(before.pushed).toBe(ferret && byIdOnly(sort));
          expect(pushed.pushed).toBe(ferret);
        }
      });
    }
  }

  test('a sort without an _id tie-break gives the same keys as before', async () => {
    for (const direction of [1, -1] as const) {
      for (const [limit, skip] of PAGES) {
        const pushed = await find('Sorted', { deleted: { $ne: true } }, { [W]: direction }, limit, skip);
        const before = await find('Sorted', twin({ deleted: { $ne: true } }), { [W]: direction }, limit, skip);
        const keys = (docs: Doc[]) => docs.map((doc) => at(doc, W) ?? null);
        expect(keys(pushed.docs)).toEqual(keys(before.docs));
        expect(pushed.pushed).toBe(ferret);
      }
    }
  });

  test('a filter the engine does not answer exactly in SQL is answered as before', async () => {
    const filter = { 'sp.status.c': { $regex: 'ctiv' } };
    const got = await find('Sorted', filter, { [W]: -1, _id: -1 }, 5, 1);
    expect(got.ids).toEqual(expected(DOCS, (doc) => at(doc, 'sp.status.c') === 'active', { [W]: -1, _id: -1 }, 1, 5));
    expect(got.pushed).toBe(false);
  });

  test('no limit, or a $natural sort, is answered as before', async () => {
    const all = await db.command({ find: 'Sorted', filter: {}, sort: { _id: 1 }, batchSize: 1000 });
    expect((all.cursor as { firstBatch: Doc[] }).firstBatch.map((doc) => doc._id)).toEqual(
      expected(DOCS, () => true, { _id: 1 }, 0, 1000),
    );
    expect(all.medsfhirOrderPushdown).toBeUndefined();
  });

  test('the cursor pages through the rows in batches (getMore)', async () => {
    const sort = { [W]: -1 as const, _id: -1 as const };
    const cursor = db
      .collection<Doc>('Sorted')
      .find({ deleted: { $ne: true } }, { sort, limit: 15, skip: 2, batchSize: 4 });
    const ids = (await cursor.toArray()).map((doc) => doc._id);
    expect(ids).toEqual(expected(DOCS, (doc) => doc.deleted !== true, sort, 2, 15));
  });

  test('values SQLite cannot order as MongoDB does: the engine declines, unless the filter leaves them out', async () => {
    const sorts: Record<string, 1 | -1>[] = [
      { [W]: 1, _id: 1 },
      { [W]: -1, _id: -1 },
    ];
    for (const sort of sorts) {
      const got = await find('Mixed', {}, sort, 3);
      const before = await find('Mixed', twin({}), sort, 3);
      expect(got.ids).toEqual(before.ids);
      expect(got.pushed).toBe(false);
      const active = await find('Mixed', { 'sp.status.c': 'active' }, sort, 3);
      expect(active.ids).toEqual(expected(MIXED, (doc) => at(doc, 'sp.status.c') === 'active', sort, 0, 3));
      expect(active.pushed).toBe(ferret);
    }
  });

  test('writes after the first query are seen in order', async () => {
    const collection = db.collection<Doc>('Sorted');
    const sort = { [W]: 1 as const, _id: 1 as const };
    await collection.updateOne({ _id: 'c6' }, { $set: { [W]: 'zzz' } });
    await collection.insertOne({ _id: 'f1', sp: { _sort: { w: 'aardvark' } } });
    try {
      const docs = (await collection.find({}).toArray()) as Doc[];
      const got = await find('Sorted', {}, sort, 30);
      expect(got.ids).toEqual(expected(docs, () => true, sort, 0, 30));
      expect(got.pushed).toBe(ferret);
    } finally {
      await collection.updateOne({ _id: 'c6' }, { $set: { [W]: -1 } });
      await collection.deleteOne({ _id: 'f1' });
    }
  });

  test('keyset pages: null, $ne null, date equality and _id ranges are exact in SQL', async () => {
    const LIVE = { deleted: { $ne: true } };
    const beta = {
      $or: [{ [W]: { $lt: 'beta' } }, { [W]: null }, { $and: [{ [W]: 'beta' }, { _id: { $lt: 'e1' } }] }],
    };
    const march = {
      $or: [
        { [AT]: { $gt: d('2024-03-01T00:00:00Z') } },
        { $and: [{ [AT]: d('2024-03-01T00:00:00Z') }, { _id: { $gt: 'a1' } }] },
      ],
    };
    const cases: [Document, (doc: Doc) => boolean, Record<string, 1 | -1>][] = [
      [{ [W]: null }, (doc) => at(doc, W) == null, { _id: 1 }],
      [{ ...LIVE, [W]: { $ne: null } }, (doc) => doc.deleted !== true && at(doc, W) != null, { [W]: 1, _id: 1 }],
      [
        { [AT]: d('2024-03-01T00:00:00Z') },
        (doc) => at(doc, AT)?.valueOf() === d('2024-03-01T00:00:00Z').getTime(),
        { _id: -1 },
      ],
      [{ _id: { $gt: 'b', $lte: 'c4' } }, (doc) => doc._id > 'b' && doc._id <= 'c4', { [W]: -1, _id: -1 }],
      [
        { $and: [LIVE, beta] },
        (doc) => {
          const w = at(doc, W);
          return (
            doc.deleted !== true &&
            (w == null || (typeof w === 'string' && (w < 'beta' || (w === 'beta' && doc._id < 'e1'))))
          );
        },
        { [W]: -1, _id: -1 },
      ],
      [
        march,
        (doc) => {
          const t = (at(doc, AT) as Date | undefined)?.getTime();
          const m = d('2024-03-01T00:00:00Z').getTime();
          return t !== undefined && (t > m || (t === m && doc._id > 'a1'));
        },
        { [AT]: 1, _id: 1 },
      ],
    ];
    for (const [filter, keep, sort] of cases) {
      const want = expected(KEYSET, keep, sort, 0, 100);
      expect(want.length).toBeGreaterThan(0);
      const pushed = await find('Keyset', filter, sort, 100);
      const before = await find('Keyset', twin(filter), sort, 100);
      expect({ filter, ids: pushed.ids }).toEqual({ filter, ids: want });
      expect({ filter, ids: before.ids }).toEqual({ filter, ids: want });
      expect({ filter, pushed: pushed.pushed }).toEqual({ filter, pushed: ferret });
      const count = await db.command({ count: 'Keyset', query: filter });
      expect({ filter, n: count.n, exact: count.medsfhirExactCount === true }).toEqual({
        filter,
        n: want.length,
        exact: ferret,
      });
    }
    // A boolean is not null, and the side table holds nothing for it: the engine declines (a sort on
    // another key than `_id`, which the `_id` index would answer whatever the filter).
    const bySort = { [AT]: 1 as const, _id: 1 as const };
    const bools = await find('Sorted', { [W]: null }, bySort, 100);
    expect(bools.ids).toEqual(expected(DOCS, (doc) => at(doc, W) == null, bySort, 0, 100));
    expect(bools.pushed).toBe(false);
  });

  test('ObjectId _ids: sorted after strings in SQL, and an _id range declines (their text looks like a string)', async () => {
    const ids = db.collection('Ids');
    await ids.insertMany([{ _id: 'b' }, { _id: OID_A }, { _id: 'a' }] as never[]);
    const all = await db.command({ find: 'Ids', filter: {}, sort: { _id: 1 }, limit: 5 });
    expect((all.cursor as { firstBatch: Document[] }).firstBatch.map((doc) => String(doc._id))).toEqual([
      'a',
      'b',
      OID_A.toHexString(),
    ]);
    expect(all.medsfhirOrderPushdown === true).toBe(ferret);
    const range = await find('Ids', { _id: { $gt: '' } }, { _id: -1 }, 5);
    expect(range.ids).toEqual(['b', 'a']);
    expect(range.pushed).toBe(false);
  });
});
