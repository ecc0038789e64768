import { type Document, MongoClient } from 'mongodb';
import { databaseNameFor } from '../support/server';

/**
 * Compare-and-set over the wire: of racing single-document writes conditioned on the same version,
 * exactly one may match. FerretDB 1.24 answers them as a read followed by a write (13 of 20 "won" when
 * measured); our build holds a per-collection lock across the two (tools/ferretdb/patch). The store's
 * commit protocol rests on this.
 */
let client: MongoClient;
const dbName = databaseNameFor(__filename);
type Doc = { _id: string; v: number } & Document;
const RACERS = 20;

let db: ReturnType<MongoClient['db']>;
beforeAll(async () => {
  // A pool as large as the race, so the writes really are in flight together.
  client = await MongoClient.connect(process.env.MONGODB_URI as string, { maxPoolSize: RACERS, minPoolSize: RACERS });
  db = client.db(dbName);
  await db.dropDatabase();
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

/** Runs `write(i)` for every racer at once and returns how many matched. */
async function race(write: (i: number) => Promise<number>): Promise<number> {
  const results = await Promise.all(Array.from({ length: RACERS }, (_, i) => write(i)));
  return results.reduce((a, b) => a + b, 0);
}

describe('atomic single-document writes', () => {
  it.each([1, 2, 3])('updateOne({_id, v: 1}) matches once of 20 racers (round %i)', async (round) => {
    const things = db.collection<Doc>('Update');
    await things.insertOne({ _id: `u${round}`, v: 1 });
    const matched = await race(
      async (i) => (await things.updateOne({ _id: `u${round}`, v: 1 }, { $set: { v: 2, by: i } })).matchedCount,
    );
    expect(matched).toBe(1);
    expect((await things.findOne({ _id: `u${round}` }))?.v).toBe(2);
  });

  it.each([1, 2, 3])('replaceOne({_id, v: 1}) matches once of 20 racers (round %i)', async (round) => {
    const things = db.collection<Doc>('Replace');
    await things.insertOne({ _id: `r${round}`, v: 1 });
    const matched = await race(
      async (i) => (await things.replaceOne({ _id: `r${round}`, v: 1 }, { v: 2, by: i })).matchedCount,
    );
    expect(matched).toBe(1);
    const stored = await things.findOne({ _id: `r${round}` });
    expect(stored?.v).toBe(2);
  });

  it('findOneAndUpdate and deleteOne with a version filter win once', async () => {
    const things = db.collection<Doc>('Other');
    await things.insertOne({ _id: 'f', v: 1 });
    const found = await race(async (i) =>
      (await things.findOneAndUpdate({ _id: 'f', v: 1 }, { $set: { v: 2, by: i } })) ? 1 : 0,
    );
    expect(found).toBe(1);
    await things.insertOne({ _id: 'd', v: 1 });
    // A delete races updates that move the version on: either the delete wins, or one update does.
    const outcomes = await Promise.all([
      things.deleteOne({ _id: 'd', v: 1 }).then((r) => r.deletedCount),
      ...Array.from({ length: RACERS - 1 }, (_, i) =>
        things.updateOne({ _id: 'd', v: 1 }, { $set: { v: 2, by: i } }).then((r) => r.matchedCount),
      ),
    ]);
    expect(outcomes.reduce((a, b) => a + b, 0)).toBe(1);
  });
});
