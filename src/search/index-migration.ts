import type { Db, IndexDescription } from 'mongodb';
import type { Logger } from 'pino';
import { TYPE_INDEXES } from '../store/resource-store';
import { searchIndexes } from './indexes';

/** One index made ready by the migration, for the log. */
export interface IndexProgress {
  collection: string;
  index: string;
  /** The key paths: on the embedded engine, one multikey side table each. */
  paths: string[];
  ms: number;
  /** False when it existed already (on the embedded engine, a missing side table is still built). */
  created: boolean;
}

/** The indexes of each collection of `types` that searches of the medication set are planned on. */
export function searchIndexPlan(types: Iterable<string>): { collection: string; indexes: IndexDescription[] }[] {
  return [...types].map((type) => ({ collection: type, indexes: [...TYPE_INDEXES, ...searchIndexes(type)] }));
}

/**
 * Start-up index migration: creates every index of the plan before the server answers, one
 * createIndex call at a time (FerretDB 1.24 drops the connection on a createIndexes command naming
 * several existing indexes). createIndex waits for the build: on MongoDB the index build, on the
 * embedded engine the backfill of each key path's side table, and it repairs a side table a crash
 * left half-built. An index that exists costs one round trip, so this runs at every start.
 */
export async function migrateIndexes(
  db: Db,
  plan: { collection: string; indexes: IndexDescription[] }[],
  onIndex: (progress: IndexProgress) => void,
): Promise<void> {
  for (const { collection, indexes } of plan) {
    const existing = new Set(
      (
        await db
          .collection(collection)
          .listIndexes()
          .toArray()
          .catch(() => [])
      ).map((index) => String(index.name)),
    );
    for (const { key, ...options } of indexes) {
      const started = Date.now();
      const name = await db.collection(collection).createIndex(key as Record<string, 1 | -1>, options);
      onIndex({
        collection,
        index: name,
        paths: Object.keys(key),
        ms: Date.now() - started,
        created: !existing.has(name),
      });
    }
  }
}

/**
 * The migration as the server runs it at start-up, before the first request: each index built (or
 * with a side table to build) is logged with its collection, paths and time; indexes that existed
 * only at debug level; then the total.
 */
export async function runIndexMigration(db: Db, types: Iterable<string>, logger: Logger): Promise<void> {
  const started = Date.now();
  let built = 0;
  await migrateIndexes(db, searchIndexPlan(types), (progress) => {
    const slow = progress.ms >= 100;
    if (progress.created || slow) built++;
    const log = progress.created || slow ? logger.info.bind(logger) : logger.debug.bind(logger);
    log(progress, progress.created ? 'index built' : 'index ready');
  });
  logger.info({ ms: Date.now() - started, built }, 'index migration done');
}
