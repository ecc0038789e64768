import { Db, MongoClient } from 'mongodb';

export interface DatabaseConnection {
  client: MongoClient;
  db: Db;
  /** True on a replica set or mongos, where multi-document transactions exist (not on FerretDB 1.x). */
  supportsTransactions: boolean;
  close(): Promise<void>;
}

/**
 * Connects with a journaled, majority write concern so that an acknowledged write survives a crash
 * of the database node; engines that have a single node (FerretDB, a standalone mongod) accept it too.
 */
export async function connectDatabase(uri: string, dbName: string): Promise<DatabaseConnection> {
  const client = new MongoClient(uri, {
    writeConcern: { w: 'majority', journal: true },
    serverSelectionTimeoutMS: 10_000,
  });
  await client.connect();
  const db = client.db(dbName);
  const hello = await db.admin().command({ hello: 1 });
  const supportsTransactions = Boolean(hello.setName) || hello.msg === 'isdbgrid';
  return { client, db, supportsTransactions, close: () => client.close() };
}

/** Cheap liveness probe for /readyz. */
export async function pingDatabase(db: Db): Promise<boolean> {
  try {
    await db.command({ ping: 1 });
    return true;
  } catch {
    return false;
  }
}
