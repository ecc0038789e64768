import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import { SETTINGS_COLLECTION } from '../fhir/page-token';
import type { CurrentDocument } from '../store/documents';
import { indexedDateValuePaths } from './indexes';
import { SHORT_SPAN_MS, SPAN_KEY, WIDE } from './keys';

const DONE = 'date-spans-marked';
/** How long a "not marked yet" answer is trusted before the settings are asked again. */
const UNMARKED_TTL_MS = 5000;

type StoredDate = { lo?: unknown; hi?: unknown; [SPAN_KEY]?: string };

const marked = new WeakMap<Db, { value: boolean; at: number }>();

/**
 * Whether every stored date value of the indexed date parameters carries its span marker (keys.ts,
 * SPAN_KEY), so that searches may split date windows on it (compile/date-ranges.ts). Values written
 * by this version carry it; those of earlier versions get it from markWideDates at start-up.
 */
export async function dateSpansMarked(db: Db): Promise<boolean> {
  const known = marked.get(db);
  if (known && (known.value || Date.now() - known.at < UNMARKED_TTL_MS)) return known.value;
  const done = await db.collection<{ _id: string }>(SETTINGS_COLLECTION).findOne({ _id: DONE });
  marked.set(db, { value: !!done, at: Date.now() });
  return !!done;
}

/**
 * Marks the wide date values stored before the marker existed, once per database, before the server
 * answers (a search that split a window on the marker would miss an unmarked one). One scan of the
 * collections of `types` that have indexed date parameters, reading only those values; a document
 * written meanwhile is skipped (its version moved, and the new one has the marker).
 */
export async function markWideDates(db: Db, types: readonly string[], logger: Logger): Promise<number> {
  const settings = db.collection<{ _id: string; at?: Date }>(SETTINGS_COLLECTION);
  if (await settings.findOne({ _id: DONE })) return 0;
  let changed = 0;
  for (const type of types) {
    const paths = indexedDateValuePaths(type);
    if (!paths.length) continue;
    const collection = db.collection<CurrentDocument>(type);
    const projection = Object.fromEntries([['v', 1], ...paths.map((p) => [p, 1])]);
    const cursor = collection.find({}, { projection }).batchSize(1000);
    try {
      for await (const doc of cursor) {
        const update: Record<string, unknown> = {};
        for (const path of paths) {
          const value = valueAt(doc, path);
          const next = withSpans(value);
          if (next !== value) update[path] = next;
        }
        if (!Object.keys(update).length) continue;
        await collection.updateOne({ _id: doc._id, v: doc.v }, { $set: update });
        changed++;
      }
    } finally {
      await cursor.close();
    }
  }
  await settings.updateOne({ _id: DONE }, { $set: { at: new Date() } }, { upsert: true });
  marked.set(db, { value: true, at: Date.now() });
  if (changed) logger.info({ changed }, 'stored date values longer than a day marked for date-window searches');
  return changed;
}

function valueAt(doc: object, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>(
      (node, key) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined),
      doc,
    );
}

/** The stored value (one date or an array of them) with its wide ones marked; itself when none changes. */
function withSpans(value: unknown): unknown {
  if (Array.isArray(value)) {
    const next = value.map(withSpans);
    return next.some((v, i) => v !== value[i]) ? next : value;
  }
  if (!value || typeof value !== 'object') return value;
  const date = value as StoredDate;
  if (!(date.lo instanceof Date) || !(date.hi instanceof Date) || date[SPAN_KEY] === WIDE) return value;
  return date.hi.getTime() - date.lo.getTime() > SHORT_SPAN_MS ? { ...date, [SPAN_KEY]: WIDE } : value;
}
