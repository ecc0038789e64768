import type { Collection, Db } from 'mongodb';
import { withEngineRetry } from '../../store/engine-errors';

/** Client assertion ids already used, one document each, kept until the assertion could no longer be accepted. */
export const JTI_COLLECTION = '_auth_jti';

interface UsedAssertion {
  /** Client id and jti, length-prefixed so that no two pairs share an _id. */
  _id: string;
  expiresAt: Date;
}

export interface ReplayStore {
  /**
   * Records that the client used this assertion id. True the first time; false when it was used
   * before, by any server process on the database, however close together the two requests came.
   */
  claim(clientId: string, jti: string, expiresAt: Date): Promise<boolean>;
}

export interface ReplayStoreOptions {
  /** How often one process deletes the records of assertions that have expired. */
  sweepIntervalMs?: number;
}

function isDuplicateKey(error: unknown): boolean {
  return (error as { code?: unknown }).code === 11000;
}

/**
 * The jti store in the database. Replay protection rests on the unique _id alone: both engines refuse
 * a second insert of one _id atomically, so of two concurrent requests with one jti exactly one wins,
 * whichever process serves them. Expired records are deleted by an occasional sweep rather than a TTL
 * index, which FerretDB 1.x does not have.
 */
export async function createReplayStore(db: Db, options: ReplayStoreOptions = {}): Promise<ReplayStore> {
  const collection: Collection<UsedAssertion> = db.collection<UsedAssertion>(JTI_COLLECTION);
  await withEngineRetry(() => collection.createIndex({ expiresAt: 1 }));
  const sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
  let lastSweep = 0;

  async function sweep(now: Date): Promise<void> {
    if (now.getTime() - lastSweep < sweepIntervalMs) return;
    lastSweep = now.getTime();
    try {
      await collection.deleteMany({ expiresAt: { $lt: now } });
    } catch {
      // Only housekeeping: the next sweep deletes what this one left.
    }
  }

  return {
    async claim(clientId, jti, expiresAt) {
      try {
        // A retried insert that had in fact landed reads as a replay: the client is refused once and
        // sends a new assertion, which is the safe side to err on.
        await withEngineRetry(() => collection.insertOne({ _id: `${clientId.length}:${clientId}:${jti}`, expiresAt }));
      } catch (error) {
        if (isDuplicateKey(error)) return false;
        throw error;
      }
      await sweep(new Date());
      return true;
    },
  };
}
