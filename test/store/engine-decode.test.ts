import { Binary, BSONRegExp, Int32, Long, MongoClient, ObjectId } from 'mongodb';
import { databaseNameFor } from '../support/server';

// The engine reads stored objects, arrays and plain strings in one scan and leaves anything else to
// FerretDB's decoder (tools/ferretdb/patch/decode_medsfhir.go): both must give back what was written.
let client: MongoClient;
const dbName = databaseNameFor(__filename);

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  await client.db(dbName).dropDatabase();
});
afterAll(async () => {
  await client.db(dbName).dropDatabase();
  await client.close();
});

const TEXTS = [
  '',
  'plain',
  'quote " inside',
  'backslash \\ inside',
  'line\nbreak\ttab',
  'unicode é ü 漢字 🙂',
  '\u0001 control',
  '{"looks":"like json"}',
  '[1, 2, "three"]',
  'ends with backslash \\',
  ' spaces around ',
];

describe('the engine reads back what it stored', () => {
  it('keeps strings of every kind, nested objects and arrays', async () => {
    const collection = client.db(dbName).collection<{ _id: string }>('decode');
    const docs = TEXTS.map((text, i) => ({
      _id: `doc-${i}`,
      text,
      nested: { deeper: { deepest: [text, { text }, { inner: [text, { text }] }] }, empty: {}, none: [] },
      // Keys only of letters, digits, spaces and non-ASCII: FerretDB 1.24 writes keys unescaped, so one
      // with a quote, a backslash or a control character cannot be stored at all (FHIR has none).
      [`key ${i} é 漢 🙂`]: text,
      mixed: [1, 2.5, -0.125, true, false, null, text, { a: [{}] }],
      big: 2 ** 40,
      when: new Date('2026-12-01T10:11:12.013Z'),
      // Types whose schema entries the one-scan reader leaves to FerretDB's (binary) or reads itself.
      types: { bin: new Binary(Buffer.from(`bytes ${i}`)), re: new BSONRegExp('^ab+c', 'i'), oid: new ObjectId() },
      numbers: { int: new Int32(-7), long: Long.fromNumber(2 ** 53 - 1), double: 1.5e-300 },
    }));
    await collection.insertMany(docs);
    const back = await collection.find({}).sort({ _id: 1 }).toArray();
    // As the driver gives them back: 64-bit and 32-bit integers as numbers, a BSON regex as a RegExp.
    const expected = docs.map((d) => ({
      ...d,
      types: { ...d.types, re: /^ab+c/i },
      numbers: { int: -7, long: 2 ** 53 - 1, double: 1.5e-300 },
    }));
    expect(back).toEqual(expected.sort((a, b) => (a._id < b._id ? -1 : 1)));
    for (const doc of docs) {
      expect(await collection.findOne({ _id: doc._id }, { projection: { nested: 1, text: 1 } })).toEqual({
        _id: doc._id,
        text: doc.text,
        nested: doc.nested,
      });
    }
  });
});

// A find that projects fields away decodes only the top-level fields its projection, filter and sort
// name (tools/ferretdb/patch/fields_medsfhir.go): its answers must be those of the whole documents.
describe('a projected find decodes only the fields it needs', () => {
  type Row = { _id: string; resource: { n: number; tag: string }; sp: { big: string[]; key: number }; other: string };
  const rows: Row[] = Array.from({ length: 30 }, (_, i) => ({
    _id: `row-${String(i).padStart(2, '0')}`,
    resource: { n: i, tag: i % 3 ? 'odd' : 'three' },
    sp: { big: Array.from({ length: 20 }, (_, k) => `value ${i}-${k}`), key: (i * 7) % 30 },
    other: `other ${i}`,
  }));
  const collection = () => client.db(dbName).collection<Row>('projected');
  /** The documents a projection of top-level inclusions (and `_id: 0`) keeps, computed here. */
  const project = (doc: Row, keep: string[], withId = true) =>
    Object.fromEntries(Object.entries(doc).filter(([k]) => (k === '_id' ? withId : keep.includes(k))));

  beforeAll(async () => {
    await collection().insertMany(rows);
  });

  it('filters on a field it does not return', async () => {
    const found = await collection()
      .find({ 'sp.key': { $lt: 10 } }, { projection: { resource: 1 } })
      .toArray();
    const expected = rows.filter((r) => r.sp.key < 10).map((r) => project(r, ['resource']));
    expect(found.sort((a, b) => (a._id < b._id ? -1 : 1))).toEqual(expected);
  });

  it('sorts on a field it does not return, through $and and $or', async () => {
    const found = await collection()
      .find(
        { $and: [{ $or: [{ 'resource.tag': 'three' }, { other: 'other 1' }] }, { 'sp.big': { $exists: true } }] },
        { projection: { _id: 0, resource: 1 }, sort: { 'sp.key': -1 }, limit: 5 },
      )
      .toArray();
    const expected = rows
      .filter((r) => r.resource.tag === 'three' || r.other === 'other 1')
      .sort((a, b) => b.sp.key - a.sp.key)
      .slice(0, 5)
      .map((r) => project(r, ['resource'], false));
    expect(found).toEqual(expected);
  });

  it('decodes one member of an object for a nested projection, filter and existence test', async () => {
    const found = await collection()
      .find({ 'sp.big': 'value 3-2', 'sp.missing': { $exists: false } }, { projection: { 'sp.key': 1 } })
      .toArray();
    expect(found).toEqual([{ _id: 'row-03', sp: { key: 21 } }]);
    // A path beside its parent: the engine keeps the whole parent, so it must decode all of it.
    const whole = await collection()
      .find({ 'sp.key': 21 }, { projection: { sp: 1, 'sp.key': 1 } })
      .toArray();
    expect(whole).toEqual([{ _id: 'row-03', sp: rows[3].sp }]);
  });

  it('answers exclusion projections and finds by _id as before', async () => {
    const excluded = await collection().findOne({ _id: 'row-04' }, { projection: { sp: 0 } });
    expect(excluded).toEqual(project(rows[4], ['resource', 'other']));
    const withoutId = await collection().findOne({ _id: 'row-04' }, { projection: { _id: 0 } });
    expect(withoutId).toEqual(project(rows[4], ['resource', 'sp', 'other'], false));
    const byId = await collection().findOne({ _id: 'row-05' }, { projection: { other: 1 } });
    expect(byId).toEqual({ _id: 'row-05', other: 'other 5' });
    const sortedById = await collection()
      .find({}, { projection: { resource: 1 }, sort: { _id: 1 }, limit: 3 })
      .toArray();
    expect(sortedById).toEqual(rows.slice(0, 3).map((r) => project(r, ['resource'])));
  });
});
