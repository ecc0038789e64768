import { type Document, type Filter, MongoClient } from 'mongodb';
import { databaseNameFor } from '../support/server';

/**
 * The embedded engine pushes string and date conditions down to SQLite as a pre-filter answered from
 * multikey side tables that createIndex builds (tools/ferretdb/patch). A pre-filter that dropped a
 * true match would silently lose search results, so these cases pin down MongoDB's matching rules
 * where the pre-filter must let rows through: arrays at any level of the path, several values per
 * document (two bounds met by two elements), values that are not strings, escapes in JSON text, `$in`,
 * anchored and unanchored regexes, conditions mixed with `_id`, and writes after the index exists.
 * On a real MongoDB the same cases must hold, so the expectations are MongoDB's.
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
  // Multi-valued search values: a Patient's names (family and given parts, normalized) and identifiers.
  {
    _id: 'rivera',
    sp: {
      name: [
        { n: 'rivera', e: 'Rivera' },
        { n: 'ana', e: 'Ana' },
      ],
      identifier: [{ sc: 'urn:mrn|1' }, { sc: 'urn:ssn|99' }],
    },
  },
  { _id: 'riv', sp: { name: { n: 'riv', e: 'Riv', one: true }, identifier: { sc: 'urn:mrn|2', one: true } } },
  { _id: 'rix', sp: { name: [{ n: 'rix' }, { n: 'zed' }] } },
  { _id: 'ri.v', sp: { name: { n: 'ri.v', one: true } } },
  { _id: 'unicode', sp: { name: [{ n: 'ríos' }, { n: 'rñ' }] } },
  { _id: 'dates-2', at: [new Date('2024-03-05T00:00:00Z'), new Date('2022-06-01T00:00:00Z')] },
  // Written after the index: its trigger's guard looks for the path's longest segment ("code-value").
  { _id: 'dashed-late', sp: { 'code-value': { c: 'x' } } },
];

/** The paths the cases query, indexed first as the server's start-up migration does. */
const INDEXED = [
  'sp.patient.r',
  'sp.status.c',
  'sp.code-value.c',
  'compartments',
  'at',
  'sp.name.n',
  'sp.identifier.sc',
];

let db: ReturnType<MongoClient['db']>;
let ferret = false;
beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  ferret = (await db.admin().command({ buildInfo: 1 })).ferretdbVersion !== undefined;
  // Half the documents before the indexes (the build's backfill), half after (the triggers).
  await db.collection<Doc>('Things').insertMany(DOCS.filter((_, i) => i % 2 === 0));
  for (const path of INDEXED) await db.collection('Things').createIndex({ [path]: 1 }, { name: `by_${path}` });
  await db.collection<Doc>('Things').insertMany(DOCS.filter((_, i) => i % 2 === 1));
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

const ids = async (filter: Filter<Doc>) =>
  (await db.collection<Doc>('Things').find(filter).toArray()).map((d) => d._id).sort();

const plan = async (filter: Filter<Doc>) =>
  JSON.stringify((await db.collection<Doc>('Things').find(filter).explain()).queryPlanner);

describe('conditions pushed down to the embedded engine', () => {
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
    ['_id $in', { _id: { $in: ['list', 'riv', 'nothing'] } }, ['list', 'riv']],
    ['a dashed segment', { 'sp.code-value.c': 'x' }, ['dashed', 'dashed-late']],
    ['a list of one value, or of several', { compartments: 'Patient/1' }, ['one-compartment', 'two-compartments']],
    ['a list of one value, by $in', { compartments: { $in: ['Patient/2'] } }, ['two-compartments']],
    ['the JSON text of an object element is not a match', { compartments: '{"r":"Patient/1"}' }, []],
    ['a string range', { 'sp.patient.r': { $gt: 'Patient/1', $lte: 'Patient/3' } }, ['leaf-array', 'list', 'other']],
    ['a range does not hold numbers', { 'sp.patient.r': { $lt: 'Patient/1' } }, []],
    // In a list, each bound may be met by another element (MongoDB's rule): 'dates' matches.
    [
      'a date range',
      { at: { $gte: new Date('2024-01-15T00:00:00Z'), $lt: new Date('2024-02-02T00:00:00Z') } },
      ['dates', 'dates-2', 'one-compartment'],
    ],
    ['a date range over a list of dates', { at: { $lt: new Date('2023-06-01T00:00:00Z') } }, ['dates', 'dates-2']],
    [
      'a two-sided date range no single date of a list meets',
      { at: { $gt: new Date('2023-06-01T00:00:00Z'), $lt: new Date('2023-07-01T00:00:00Z') } },
      ['dates', 'dates-2'],
    ],
    ['a range with a non-string bound (left to FerretDB)', { 'sp.patient.r': { $gte: 1 } }, ['number']],
    ['a numeric segment (left to FerretDB)', { 'sp.patient.0.r': 'Patient/2' }, ['list']],
    ['$or of pushed-down branches', { $or: [{ 'sp.status.c': 'stopped' }, { _id: 'missing' }] }, ['missing', 'other']],
    [
      '$or with a branch left to FerretDB',
      { $or: [{ 'sp.status.c': 'stopped' }, { 'sp.patient.r': { $exists: false } }] },
      [
        'dashed',
        'dashed-late',
        'date-text',
        'dates',
        'dates-2',
        'missing',
        'object-element',
        'one-compartment',
        'other',
        'ri.v',
        'riv',
        'rivera',
        'rix',
        'two-compartments',
        'unicode',
      ],
    ],
    [
      '$or inside $and',
      { $and: [{ 'sp.status.c': 'active' }, { $or: [{ 'sp.patient.r': 'Patient/2' }, { _id: 'scalar' }] }] },
      ['list', 'scalar'],
    ],
    // Multi-valued search values and the default string search's prefix.
    ['a token among several identifiers', { 'sp.identifier.sc': 'urn:ssn|99' }, ['rivera']],
    ['a token of a single identifier', { 'sp.identifier.sc': 'urn:mrn|2' }, ['riv']],
    ['a prefix, over several names', { 'sp.name.n': { $regex: '^riv' } }, ['riv', 'rivera']],
    ['a prefix met by the second name', { 'sp.name.n': { $regex: '^an' } }, ['rivera']],
    ['an escaped dot is a literal', { 'sp.name.n': { $regex: '^ri\\.v' } }, ['ri.v']],
    ['an unescaped dot is any character', { 'sp.name.n': { $regex: '^ri.' } }, ['ri.v', 'riv', 'rivera', 'rix']],
    ['a quantifier may drop the last literal', { 'sp.name.n': { $regex: '^rivx?' } }, ['riv', 'rivera']],
    ['an alternation is not a prefix', { 'sp.name.n': { $regex: '^zzz|ana' } }, ['rivera']],
    ['case-insensitive is not a prefix', { 'sp.name.n': { $regex: '^RIV', $options: 'i' } }, ['riv', 'rivera']],
    ['a prefix with non-ASCII text', { 'sp.name.n': { $regex: '^rí' } }, ['unicode']],
    ['a prefix ending in a multi-byte letter', { 'sp.name.n': { $regex: '^rñ' } }, ['unicode']],
    ['a regex object', { 'sp.name.n': /^ze/ }, ['rix']],
    ['an unanchored regex (left to FerretDB)', { 'sp.name.n': { $regex: 'ver' } }, ['rivera']],
    ['exact text among names', { 'sp.name.e': 'Ana' }, ['rivera']],
  ])('%s', async (_name, filter, expected) => {
    expect(await ids(filter)).toEqual(expected);
  });

  it('keeps the side tables right through updates and deletes', async () => {
    const things = db.collection<Doc>('Things');
    const updated = await things.updateOne({ _id: 'list', 'sp.status.c': 'active' }, { $set: { seen: true } });
    expect(updated.modifiedCount).toBe(1);
    expect(await ids({ seen: true } as Filter<Doc>)).toEqual(['list']);
    // A value replaced: the old one no longer finds the document, the new one does.
    await things.updateOne({ _id: 'rivera' }, { $set: { 'sp.identifier': [{ sc: 'urn:mrn|7' }, { sc: 'urn:x|8' }] } });
    expect(await ids({ 'sp.identifier.sc': 'urn:ssn|99' })).toEqual([]);
    expect(await ids({ 'sp.identifier.sc': 'urn:x|8' })).toEqual(['rivera']);
    // Several values becoming one, and a two-sided range over it.
    const between = { at: { $gt: new Date('2023-06-01T00:00:00Z'), $lt: new Date('2023-07-01T00:00:00Z') } };
    await things.replaceOne({ _id: 'dates-2' }, { at: new Date('2022-06-01T00:00:00Z') });
    expect(await ids(between)).toEqual(['dates']);
    await things.replaceOne(
      { _id: 'dates-2' },
      { at: [new Date('2024-03-05T00:00:00Z'), new Date('2020-01-01T00:00:00Z')] },
    );
    expect(await ids(between)).toEqual(['dates', 'dates-2']);
    expect((await things.deleteMany({ 'sp.patient.r': 'Patient/3' })).deletedCount).toBe(1);
    expect(await ids({ 'sp.patient.r': 'Patient/1' })).toEqual(['list', 'scalar', 'top-array']);
    expect((await things.findOneAndDelete({ 'sp.name.n': { $regex: '^ri\\.' } }))?._id).toBe('ri.v');
    expect(await ids({ 'sp.name.n': { $regex: '^ri' } })).toEqual(['riv', 'rivera', 'rix']);
  });

  it('answers equalities and prefixes from the side tables (explain), and lists the indexes', async () => {
    const names = (await db.collection('Things').listIndexes().toArray()).map((i) => String(i.name));
    expect(names).toEqual(expect.arrayContaining(INDEXED.map((path) => `by_${path}`)));
    if (!ferret) return; // real MongoDB: its own multikey indexes
    for (const filter of [
      { 'sp.status.c': 'active' },
      { 'sp.identifier.sc': 'urn:mrn|2' },
      { 'sp.name.n': { $regex: '^riv' } },
      { 'sp.patient.r': 'Patient/1', 'sp.status.c': 'active' },
    ] as Filter<Doc>[]) {
      expect(await plan(filter)).toMatch(/SEARCH things_[0-9a-f]+_mk_[0-9a-f]+ USING (COVERING INDEX|PRIMARY KEY)/);
    }
  });

  it('builds an index for a path first queried at runtime in the background, and uses it once ready', async () => {
    if (!ferret) return;
    const path = 'sp.status.later';
    const later = db.collection<Doc>('Later');
    await later.insertMany(
      Array.from({ length: 50 }, (_, i) => ({ _id: `l${i}`, sp: { status: { later: `v${i % 5}` } } })),
    );
    // The first query is answered (by a scan) without waiting for an index.
    expect((await later.find({ [path]: 'v1' }).toArray()).length).toBe(10);
    let used = false;
    for (let i = 0; i < 50 && !used; i++) {
      used = /_mk_[0-9a-f]+/.test(JSON.stringify((await later.find({ [path]: 'v1' }).explain()).queryPlanner));
      if (!used) await new Promise((r) => setTimeout(r, 100));
    }
    expect(used).toBe(true);
    expect((await later.find({ [path]: 'v1' }).toArray()).length).toBe(10);
  });
});

describe('look-ups by _id on the embedded engine', () => {
  it("are answered from FerretDB's unique _id index (no second index on _id to keep), updates too", async () => {
    if (!ferret) return;
    for (const filter of [{ _id: 'list' }, { _id: { $in: ['list', 'riv'] } }] as Filter<Doc>[]) {
      expect(await plan(filter)).toMatch(/SEARCH things_[0-9a-f]+ USING INDEX things_[0-9a-f]+__id_ \(<expr>=\?\)/);
    }
    await db.collection<Doc>('Things').updateOne({ _id: 'riv' }, { $set: { touched: true } });
    expect(await ids({ touched: true })).toEqual(['riv']);
  });
});
