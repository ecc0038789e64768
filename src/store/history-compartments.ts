import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import { compartmentsOf } from '../fhir/compartments';
import { SETTINGS_COLLECTION } from '../fhir/page-token';
import { HISTORY_COLLECTION, type CurrentDocument, type HistoryDocument } from './documents';

const DONE = 'history-compartments-backfilled';

/**
 * Versions written before access control carry no `compartments`, so a restricted requester's history
 * filter (compartments $in ...) leaves them out: hidden, never shown wrongly. This pass gives them
 * their compartments once, in the background (one scan, progress in the log), and records that it ran.
 */
export async function backfillHistoryCompartments(db: Db, logger: Logger): Promise<number> {
  const settings = db.collection<{ _id: string; at: Date }>(SETTINGS_COLLECTION);
  if (await settings.findOne({ _id: DONE })) return 0;
  const history = db.collection<HistoryDocument>(HISTORY_COLLECTION);
  const cursor = history.find({ compartments: { $exists: false } }).batchSize(500);
  let done = 0;
  try {
    for await (const version of cursor) {
      let compartments: string[];
      if (version.resource) compartments = compartmentsOf(version.resource);
      else {
        // A deletion has no content: it is in the compartments of the version it deleted.
        const current = await db.collection<CurrentDocument>(version.type).findOne({ _id: version.id });
        compartments = current?.compartments ?? [];
      }
      await history.updateOne({ _id: version._id }, { $set: { compartments } });
      if (++done % 5000 === 0) logger.info({ done }, 'history versions given their compartments');
    }
  } finally {
    await cursor.close();
  }
  await settings.updateOne({ _id: DONE }, { $set: { at: new Date() } }, { upsert: true });
  if (done) logger.info({ done }, 'every history version now carries its compartments');
  return done;
}
