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
