import type { Db } from 'mongodb';
import type { MongoFilter } from './compile/element';
import { boundedFields, collectionIndexes } from './explain';

/** Most indexes added this way to one collection (MongoDB allows 64 in all). */
const MAX_PER_COLLECTION = 16;

/**
 * Indexes for searches nobody planned (types outside the medication set, parameters without an index
 * in indexes.ts): the first search of such a path is answered without an index, and asks for a
 * single-field index on it, built in the background, one at a time, never awaited by a query.
 * MongoDB uses it once built; the embedded engine also starts its own background build of the path on
 * the first query, so there this only makes the index show in listIndexes.
 */
export class BackgroundIndexer {
  private readonly requested = new Set<string>();
  private readonly perCollection = new Map<string, number>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly onError: (error: unknown, index: { collection: string; path: string }) => void = () => undefined,
  ) {}

  /** Call with the filter a search of `type` sends; returns at once. */
  noteQuery(type: string, filter: MongoFilter): void {
    const leading = new Set(collectionIndexes(type).map((index) => Object.keys(index.key)[0]));
    for (const path of boundedFields(filter).keys()) {
      if (!path.startsWith('sp.') || leading.has(path)) continue;
      const key = `${type}\u0000${path}`;
      const count = this.perCollection.get(type) ?? 0;
      if (this.requested.has(key) || count >= MAX_PER_COLLECTION) continue;
      this.requested.add(key);
      this.perCollection.set(type, count + 1);
      this.queue = this.queue.then(() =>
        this.db
          .collection(type)
          .createIndex({ [path]: 1 }, { name: `auto_${path.replace(/\./g, '_')}` })
          .then(
            () => undefined,
            (error: unknown) => {
              this.requested.delete(key); // asked again by a later search
              this.perCollection.set(type, (this.perCollection.get(type) ?? 1) - 1);
              this.onError(error, { collection: type, path });
            },
          ),
      );
    }
  }

  /** Resolves when every index asked for so far is built (tests, shutdown). */
  idle(): Promise<void> {
    return this.queue;
  }
}
