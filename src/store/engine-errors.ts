import { MongoNetworkError, MongoServerSelectionError } from 'mongodb';

/**
 * Errors after which the same database command may simply be sent again: SQLite's "database is
 * locked" / SQLITE_BUSY as FerretDB passes it on under write load, and a connection lost on the way.
 * Every command retried this way is idempotent or guarded by a version, so a repeat never doubles a write.
 */
export function isTransientEngineError(error: unknown): boolean {
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError) return true;
  const message = error instanceof Error ? error.message : String(error);
  return /database is locked|SQLITE_BUSY|\(BUSY\)|\(LOCKED\)/i.test(message);
}

/** Runs a database step, retrying transient engine errors a few times with a growing pause. */
export async function withEngineRetry<T>(step: () => Promise<T>, attempts = 6): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (attempt >= attempts || !isTransientEngineError(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
    }
  }
}
