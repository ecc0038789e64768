import { type Document, type Filter, MongoClient } from 'mongodb';
import { databaseNameFor } from '../support/server';

/**
 * The embedded engine pushes string equalities down to SQLite as a pre-filter (tools/ferretdb/patch).
 * A pre-filter that dropped a true match would silently lose search results, so these cases pin down
 * MongoDB's matching rules where the pre-filter must step aside: arrays at any level of the path,
 * values that are not strings, escapes in JSON text, `$in`, and conditions mixed with `_id`.
 */
let client: MongoClient;
const dbName = databaseNameFor(__filename);
type Doc = { _id: string } & Document;

const DOCS: Doc[] = [
  { _id: 'scalar', sp: { patient: { r: 'Patient/1', one: true }, status: { c: 'active' } } },
  { _id: 'list', sp: { patient: [{ r: 'Patient/2' }, { r: 'Patient/1' }], status: { c: 'active' } } },
  { _id: 'top-array', sp: [{ patient: { r: 'Patient/1' } }] },
  { _id: 'leaf-array', sp: { patient: { r: ['Patient/3', 'Patient/1'] } } },
  { _id: 'other', sp: { patient: { r: 'Patient/2' }, status: { c: 'stopped' } } },
  { _id: 'number', sp: { patient: { r: 1 } } },
  { _id: 'escaped', sp: { patient: { r: 'Pätient/<&> "q" \\ \u2028' } } },
  { _id: 'missing', sp: {} },
  { _id: 'dashed', sp: { 'code-value': { c: 'x' } } },
  { _id: 'one-compartment', compartments: ['Patient/1'], at: new Date('2024-02-01T00:00:00Z') },
  { _id: 'dates', at: [new Date('2024-03-01T00:00:00Z'), new Date('2023-01-01T00:00:00Z')] },
  { _id: 'date-text', at: '2024-02-15T00:00:00Z' },
  { _id: 'two-compartments', compartments: ['Patient/2', 'Patient/1'] },
  { _id: 'object-element', compartments: [{ r: 'Patient/1' }] },
];

let db: ReturnType<MongoClient['db']>;
beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  await db.collection<Doc>('Things').insertMany(DOCS);
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

const ids = async (filter: Filter<Doc>) =>
  (await db.collection<Doc>('Things').find(filter).toArray()).map((d) => d._id).sort();

describe('string equality pushed down to the embedded engine', () => {
  it.each<[string, Filter<Doc>, string[]]>([
    [
      'a scalar path, or an array at any level of it',
      { 'sp.patient.r': 'Patient/1' },
      ['leaf-array', 'list', 'scalar', 'top-array'],
    ],
    ['$eq', { 'sp.patient.r': { $eq: 'Patient/2' } }, ['list', 'other']],
    ['$in', { 'sp.patient.r': { $in: ['Patient/3', 'Patient/2'] } }, ['leaf-array', 'list', 'other']],
    ['a number is not the string of its digits', { 'sp.patient.r': '1' }, []],
    ['escapes and non-ASCII text', { 'sp.patient.r': 'Pätient/<&> "q" \\ \u2028' }, ['escaped']],
    [
      'two conditions in $and',
      { $and: [{ 'sp.patient.r': 'Patient/1' }, { 'sp.status.c': 'active' }] },
      ['list', 'scalar'],
    ],
    ['_id with another condition', { _id: 'list', 'sp.status.c': 'active' }, ['list']],
    ['_id with a condition that fails', { _id: 'other', 'sp.status.c': 'active' }, []],
    ['a dashed segment', { 'sp.code-value.c': 'x' }, ['dashed']],
    ['a list of one value, or of several', { compartments: 'Patient/1' }, ['one-compartment', 'two-compartments']],
    ['a list of one value, by $in', { compartments: { $in: ['Patient/2'] } }, ['two-compartments']],
    ['the JSON text of an object element is not a match', { compartments: '{"r":"Patient/1"}' }, []],
    ['a string range', { 'sp.patient.r': { $gt: 'Patient/1', $lte: 'Patient/3' } }, ['leaf-array', 'list', 'other']],
    ['a range does not hold numbers', { 'sp.patient.r': { $lt: 'Patient/1' } }, []],
    // In a list, each bound may be met by another element (MongoDB's rule): 'dates' matches.
    [
      'a date range',
      { at: { $gte: new Date('2024-01-15T00:00:00Z'), $lt: new Date('2024-02-02T00:00:00Z') } },
      ['dates', 'one-compartment'],
    ],
    ['a date range over a list of dates', { at: { $lt: new Date('2023-06-01T00:00:00Z') } }, ['dates']],
    ['a range with a non-string bound (left to FerretDB)', { 'sp.patient.r': { $gte: 1 } }, ['number']],
    ['a numeric segment (left to FerretDB)', { 'sp.patient.0.r': 'Patient/2' }, ['list']],
    ['$or of pushed-down branches', { $or: [{ 'sp.status.c': 'stopped' }, { _id: 'missing' }] }, ['missing', 'other']],
    [
      '$or with a branch left to FerretDB',
      { $or: [{ 'sp.status.c': 'stopped' }, { 'sp.patient.r': { $exists: false } }] },
      ['dashed', 'date-text', 'dates', 'missing', 'object-element', 'one-compartment', 'other', 'two-compartments'],
    ],
    [
      '$or inside $and',
      { $and: [{ 'sp.status.c': 'active' }, { $or: [{ 'sp.patient.r': 'Patient/2' }, { _id: 'scalar' }] }] },
      ['list', 'scalar'],
    ],
  ])('%s', async (_name, filter, expected) => {
    expect(await ids(filter)).toEqual(expected);
    // The same again once the first query built the path's index.
    expect(await ids(filter)).toEqual(expected);
  });

  it('updates and deletes find their documents through the pre-filter too', async () => {
    const things = db.collection<Doc>('Things');
    const updated = await things.updateOne({ _id: 'list', 'sp.status.c': 'active' }, { $set: { seen: true } });
    expect(updated.modifiedCount).toBe(1);
    expect(await ids({ seen: true } as Filter<Doc>)).toEqual(['list']);
    expect((await things.deleteMany({ 'sp.patient.r': 'Patient/3' })).deletedCount).toBe(1);
    expect(await ids({ 'sp.patient.r': 'Patient/1' })).toEqual(['list', 'scalar', 'top-array']);
  });

  it('answers an equality from an index on the embedded engine (explain)', async () => {
    const build = await db.admin().command({ buildInfo: 1 });
    const explained = await db.collection<Doc>('Things').find({ 'sp.status.c': 'active' }).explain();
    if (build.ferretdbVersion !== undefined) {
      expect(JSON.stringify(explained.queryPlanner)).toMatch(/USING INDEX things_[0-9a-f]+_meds_/);
    } else {
      // Real MongoDB: no index on this path, and the plan says so.
      expect(JSON.stringify(explained.queryPlanner)).toContain('COLLSCAN');
    }
  });
});
