import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { databaseNameFor } from '../support/server';

// A dropped database takes its WAL and WAL index along (tools/ferretdb: pool.Drop): left behind, a
// database created anew under the name opened them, truncating the index under connections that still
// mapped it, and the engine died of SIGBUS.
const dbName = databaseNameFor(__filename);

describe('dropping a database', () => {
  it('removes its file, its WAL and its WAL index, and a new one under the name starts empty', async () => {
    const dataDir = process.env.MEDS_FHIR_TEST_DATA_DIR;
    if (!dataDir) throw new Error('MEDS_FHIR_TEST_DATA_DIR is not set: the jest global setup starts the engine');
    const dir = join(dataDir, 'ferretdb');
    const client = await MongoClient.connect(process.env.MONGODB_URI as string);
    try {
      await client
        .db(dbName)
        .collection('drop')
        .insertMany([{ n: 1 }, { n: 2 }]);
      const files = () => readdirSync(dir).filter((f) => f.startsWith(`${dbName}.sqlite`));
      expect(files()).toContain(`${dbName}.sqlite`);
      await client.db(dbName).dropDatabase();
      for (const suffix of ['', '-wal', '-shm']) expect(existsSync(join(dir, `${dbName}.sqlite${suffix}`))).toBe(false);
      expect(await client.db(dbName).collection('drop').countDocuments()).toBe(0);
    } finally {
      await client.db(dbName).dropDatabase();
      await client.close();
    }
  });
});
