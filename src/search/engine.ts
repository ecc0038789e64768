import type { Db } from 'mongodb';

export interface EngineFeatures {
  /** $elemMatch with field conditions on sub-documents. */
  elemMatch: boolean;
}

const cache = new WeakMap<Db, Promise<EngineFeatures>>();

/**
 * What the connected engine can do, asked once per Db. FerretDB identifies itself in buildInfo
 * (`ferretdbVersion`); its 1.x $elemMatch rejects field names, so queries use positional paths there.
 */
export function engineFeatures(db: Db): Promise<EngineFeatures> {
  let features = cache.get(db);
  if (!features) {
    features = db
      .command({ buildInfo: 1 })
      .then((info) => ({ elemMatch: !('ferretdbVersion' in info) }))
      .catch(() => ({ elemMatch: false }));
    cache.set(db, features);
  }
  return features;
}
