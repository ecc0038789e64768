import { type Document, MongoClient, ObjectId } from 'mongodb';
import { databaseNameFor } from '../support/server';

/**
 * A find sorted by `_id` alone is answered by the embedded engine walking FerretDB's unique `_id` index
 * (tools/ferretdb/patch/idorder_medsfhir.go): SQLite orders the index's JSON text by bytes, which is
 * MongoDB's order of plain string ids only. The answer is flagged `medsfhirIdOrder`. A collection with
 * any other `_id` (a number, an ObjectId, a string with a space, a `!`, a quote, a backslash, a control
 * character or one that JSON escapes) must be answered as before, in MongoDB's order, which these cases
 * compute here: numbers, then strings by their UTF-8 bytes, then ObjectIds.
 */
let client: MongoClient;
let db: ReturnType<MongoClient['db']>;
let ferret = false;
const dbName = databaseNameFor(__filename);
type Id = string | number | ObjectId;

// Plain ids at the edges of the byte order: the lowest byte allowed (#), a prefix of another, dashes and
// dots, digits, upper case, `~`, non-ASCII (two and three bytes), the empty string.
const PLAIN = [
  'a',
  'a-b',
  'a.b',
  'a0',
  'ab',
  'abc',
  'A',
  'Z',
  '#',
  '#a',
  '~',
  'a~',
  'ä',
  'é',
  '€',
  'zz',
  '',
  'obs-10',
  'obs-9',
];

const rank = (v: Id) => (typeof v === 'number' ? 1 : typeof v === 'string' ? 2 : 3);
function compare(a: Id, b: Id): number {
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return Buffer.compare((a as ObjectId).id, (b as ObjectId).id);
}
const key = (v: Id) => (v instanceof ObjectId ? `oid:${v.toHexString()}` : `${typeof v}:${String(v)}`);
const sorted = (ids: Id[], direction: 1 | -1) => [...ids].sort((a, b) => compare(a, b) * direction).map(key);

async function find(collection: string, filter: Document, direction: 1 | -1, limit: number) {
  const answer = await db.command({ find: collection, filter, sort: { _id: direction }, limit, batchSize: 1000 });
  const batch = (answer.cursor as { firstBatch: { _id: Id }[] }).firstBatch;
  return { ids: batch.map((doc) => key(doc._id)), walked: answer.medsfhirIdOrder === true };
}

/** Every document in keyset pages of `size`: `_id` beyond the last one seen, sorted by `_id`, limited. */
async function keyset(collection: string, direction: 1 | -1, size: number, extra: Document = {}) {
  const seen: string[] = [];
  let last: string | undefined;
  let walked = true;
  for (;;) {
    const range = last === undefined ? {} : { _id: { [direction === 1 ? '$gt' : '$lt']: last } };
    const answer = await db.command({
      find: collection,
      filter: { $and: [extra, range] },
      sort: { _id: direction },
      limit: size,
      batchSize: size,
    });
    const batch = (answer.cursor as { firstBatch: { _id: string }[] }).firstBatch;
    walked &&= answer.medsfhirIdOrder === true;
    seen.push(...batch.map((doc) => key(doc._id)));
    if (batch.length < size) return { ids: seen, walked };
    last = batch[batch.length - 1]._id;
  }
}

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  ferret = (await db.admin().command({ buildInfo: 1 })).ferretdbVersion !== undefined;
  // Inserted out of order, half of them with a field the twin filters read.
  const shuffled = [...PLAIN].sort(() => 0.5 - Math.random());
  await db
    .collection('Plain')
    .insertMany(shuffled.map((_id, i) => ({ _id, n: i, ...(i % 2 ? { odd: true } : {}) })) as never[]);
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

describe('finds sorted by _id on the embedded engine', () => {
  it('walk the _id index in MongoDB order for plain string ids, both directions, any filter', async () => {
    for (const direction of [1, -1] as const) {
      for (const limit of [1, 5, 100]) {
        const got = await find('Plain', {}, direction, limit);
        expect({ direction, limit, ids: got.ids }).toEqual({
          direction,
          limit,
          ids: sorted(PLAIN, direction).slice(0, limit),
        });
        expect(got.walked).toBe(ferret);
      }
      // A filter the engine does not answer in SQL: FerretDB filters the walked rows.
      const deleted = await find('Plain', { odd: { $ne: true }, n: { $exists: true } }, direction, 100);
      const docs = await db.collection<{ _id: string; odd?: boolean }>('Plain').find({}).toArray();
      expect(deleted.ids).toEqual(
        sorted(
          docs.filter((d) => d.odd !== true).map((d) => d._id),
          direction,
        ),
      );
      expect(deleted.walked).toBe(ferret);
    }
  });

  it('answer keyset pages (_id beyond the last, sorted, limited) in MongoDB order, from the index', async () => {
    for (const direction of [1, -1] as const) {
      for (const size of [1, 4, 7]) {
        const got = await keyset('Plain', direction, size);
        expect({ direction, size, ids: got.ids }).toEqual({ direction, size, ids: sorted(PLAIN, direction) });
        expect(got.walked).toBe(ferret);
      }
    }
    const live = await keyset('Plain', 1, 3, { odd: { $ne: true } });
    const docs = await db
      .collection<{ _id: string; odd?: boolean }>('Plain')
      .find({ odd: { $ne: true } })
      .toArray();
    expect(live.ids).toEqual(
      sorted(
        docs.map((d) => d._id),
        1,
      ),
    );
  });

  it('apply bounds that are not plain strings, and bounds of other types, as MongoDB does', async () => {
    const cases: [Document, (id: string) => boolean][] = [
      [{ _id: { $gt: 'a b' } }, (id) => Buffer.compare(Buffer.from(id), Buffer.from('a b')) > 0],
      [{ _id: { $gte: 'a', $lt: 'a"' } }, (id) => id >= 'a' && Buffer.compare(Buffer.from(id), Buffer.from('a"')) < 0],
      [{ _id: { $gt: '' } }, (id) => id !== ''],
      [{ _id: { $lte: 'a0' } }, (id) => Buffer.compare(Buffer.from(id), Buffer.from('a0')) <= 0],
      [{ _id: { $gt: 5 } }, () => false],
      [
        { _id: { $gt: 'é', $lte: '€' } },
        (id) =>
          Buffer.compare(Buffer.from(id), Buffer.from('é')) > 0 &&
          Buffer.compare(Buffer.from(id), Buffer.from('€')) <= 0,
      ],
    ];
    for (const [filter, keep] of cases) {
      for (const direction of [1, -1] as const) {
        const got = await find('Plain', filter, direction, 100);
        expect({ filter, direction, ids: got.ids }).toEqual({
          filter,
          direction,
          ids: sorted(PLAIN.filter(keep), direction),
        });
        expect(got.walked).toBe(ferret);
      }
    }
  });

  it.each<[string, Id]>([
    ['a number', 5],
    ['a negative double', -1.5],
    ['an ObjectId', new ObjectId('652f1c2e9b1e8a0012345678')],
    ['a string with a space', 'a b'],
    ['a string with a !', 'a!'],
    ['a string with a quote', 'a"b'],
    ['a string with a backslash', 'a\\b'],
    ['a string with a control character', 'a\tb'],
    ['a string JSON escapes', 'a<b>&'],
    ['a line separator', 'a\u2028'],
  ])('fall back to MongoDB order when one _id is %s, and walk again once it is gone', async (_, odd) => {
    const name = `Odd${Math.random().toString(36).slice(2, 8)}`;
    const collection = db.collection<{ _id: Id }>(name);
    const ids: Id[] = ['a', 'a-b', 'ab', 'b', 'Z', 'é'];
    await collection.insertMany(ids.map((_id) => ({ _id })));
    // The index exists before the odd row comes: the insert must be seen.
    expect((await find(name, {}, 1, 100)).walked).toBe(ferret);
    await collection.insertOne({ _id: odd });
    const all = [...ids, odd];
    for (const direction of [1, -1] as const) {
      for (const limit of [2, 100]) {
        const got = await find(name, {}, direction, limit);
        expect({ direction, limit, ids: got.ids }).toEqual({
          direction,
          limit,
          ids: sorted(all, direction).slice(0, limit),
        });
        expect(got.walked).toBe(false);
      }
      const range = await find(name, { _id: { $gt: 'a' } }, direction, 100);
      const wanted = all.filter(
        (id) => typeof id === 'string' && Buffer.compare(Buffer.from(id), Buffer.from('a')) > 0,
      );
      expect(range.ids).toEqual(sorted(wanted, direction));
      expect(range.walked).toBe(false);
    }
    await collection.deleteOne({ _id: odd });
    const again = await find(name, {}, 1, 100);
    expect(again.ids).toEqual(sorted(ids, 1));
    expect(again.walked).toBe(ferret);
  });

  it('fall back when the odd _id was there before the first sorted find (the index is built over it)', async () => {
    const collection = db.collection<{ _id: Id }>('OddFirst');
    await collection.insertMany([{ _id: 'b' }, { _id: 3 }, { _id: 'a' }]);
    const got = await find('OddFirst', {}, 1, 10);
    expect(got.ids).toEqual(sorted(['b', 3, 'a'], 1));
    expect(got.walked).toBe(false);
  });

  it('walk with an indexed condition, whether it lets many rows through (tested per row) or few (read, then sorted)', async () => {
    // More rows than the engine counts to choose a driver (estimateCap, pushdown_medsfhir.go).
    const many = Array.from({ length: 2100 }, (_, i) => ({
      _id: `r-${(i * 7919) % 2100}`,
      sp: { c: i % 500 === 0 ? 'rare' : 'common' },
      n: i,
    }));
    const collection = db.collection<{ _id: string }>('Indexed');
    await collection.insertMany(many.slice(0, 1000));
    await collection.createIndex({ 'sp.c': 1 });
    await collection.insertMany(many.slice(1000));
    for (const value of ['common', 'rare']) {
      const want = many.filter((d) => d.sp.c === value && d._id > 'r-1').map((d) => d._id);
      for (const direction of [1, -1] as const) {
        const pages = await keyset('Indexed', direction, 250, { 'sp.c': value, _id: { $gt: 'r-1' } });
        expect({ value, direction, ids: pages.ids }).toEqual({ value, direction, ids: sorted(want, direction) });
        expect(pages.walked).toBe(ferret);
      }
    }
  });

  it('stream a walked answer through getMore batches', async () => {
    const cursor = db.collection<{ _id: string }>('Plain').find({}, { sort: { _id: 1 }, limit: 15, batchSize: 4 });
    expect((await cursor.toArray()).map((doc) => key(doc._id))).toEqual(sorted(PLAIN, 1).slice(0, 15));
  });

  it('leave a sort on _id and another key, or a find without a limit, to the other paths', async () => {
    const two = await db.command({ find: 'Plain', filter: {}, sort: { _id: 1, n: 1 }, limit: 5 });
    expect(two.medsfhirIdOrder).toBeUndefined();
    const unlimited = await db.command({ find: 'Plain', filter: {}, sort: { _id: 1 }, batchSize: 1000 });
    expect(unlimited.medsfhirIdOrder).toBeUndefined();
    expect((unlimited.cursor as { firstBatch: { _id: string }[] }).firstBatch.map((d) => key(d._id))).toEqual(
      sorted(PLAIN, 1),
    );
  });
});
