import type { AnyBulkWriteOperation, Collection, Db } from 'mongodb';
import type { CurrentDocument } from '../store/documents';
import { idPages } from '../store/read-view';
import { extractParam, sortValue } from './extract';
import { encodeCode, SINGLE, SORT_KEY } from './keys';
import { expandBases, type SearchParam, type SearchParameterRegistry } from './registry';

/** Where a reindex stopped: the collection and the last _id done in it (collections go in name order). */
export interface ReindexCursor {
  type: string;
  after: string;
}

export interface ReindexProgress {
  code: string;
  type: string;
  done: number;
  total: number;
  cursor: ReindexCursor;
}

/**
 * Below 100: the embedded FerretDB 1.24 never answers an update command of 100 or more statements
 * (measured: 99 return in about 0.6 s, 100 hang), and bulkWrite sends a batch as one such command.
 */
const BATCH = 50;

/**
 * Rounds of re-reading the documents a commit replaced during a batch. Every version written after
 * the reindex started was written by a process that already extracts the parameter (the rollout waits
 * for that, see src/modules/search-rollout.ts), so a document still moving after these rounds already
 * carries its values; the rounds are for versions older than the one read (a rolled-back commit).
 */
const MAX_ROUNDS = 10;

export interface ReindexOptions {
  onProgress?: (progress: ReindexProgress) => void;
  /** Resume after this position (a reindex interrupted by a crash), with `done` documents counted. */
  from?: ReindexCursor;
  done?: number;
  /** After each batch: answering false stops the reindex (its job was taken over or superseded). */
  onBatch?: (progress: ReindexProgress) => Promise<boolean> | boolean;
}

/**
 * Makes a registered runtime SearchParameter searchable: every write from now on already indexes it
 * (the registry knows it), so this walks each base type's collection in _id order, sets `sp.<code>` on
 * every document, then marks the parameter active. Each update is a compare-and-set on the version
 * read (`v`); one that matches nothing (a commit replaced the document meanwhile) is re-read and
 * computed anew, so a concurrent commit is never overwritten with older values and needs no lock.
 * Stops, answering false, as soon as the registry holds another definition for the url (a newer
 * version, or the parameter was deleted) or `onBatch` says so.
 */
export async function reindex(
  db: Db,
  registry: SearchParameterRegistry,
  param: SearchParam,
  options: ReindexOptions = {},
): Promise<boolean> {
  const superseded = () => param.url !== undefined && registry.byDefinitionUrl(param.url) !== param;
  let done = options.done ?? 0;
  registry.setStatus(param, 'reindexing', { done, total: 0 });
  const key = encodeCode(param.code);
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  // Name order, so that a resumed run (perhaps in another process) walks the same sequence.
  const types = [...new Set(expandBases(param.base))].filter((t) => existing.has(t)).sort();
  const from = options.from;
  const remaining = from ? types.filter((t) => t >= from.type) : types;
  let total = done;
  for (const type of remaining) {
    const filter = from?.type === type ? { _id: { $gt: from.after } } : {};
    total += await db.collection<CurrentDocument>(type).countDocuments(filter);
  }
  for (const type of remaining) {
    const collection = db.collection<CurrentDocument>(type);
    // In keyset pages (`_id` beyond the last): each a bounded walk of the engine's `_id` index, where
    // one cursor sorted by `_id` made it sort the whole collection first. The recorded position is
    // the last _id, for a resumed run.
    const pages = idPages<CurrentDocument>(
      db,
      type,
      {},
      {
        batchSize: BATCH,
        projection: { _id: 1, v: 1, resource: 1 },
        ...(from?.type === type ? { after: from.after } : {}),
      },
    );
    const flush = async (batch: CurrentDocument[]): Promise<boolean> => {
      if (superseded()) return false;
      await writeBatch(collection, batch, param, registry, key);
      done += batch.length;
      // Documents created meanwhile make done pass the first count.
      total = Math.max(total, done);
      registry.setStatus(param, 'reindexing', { done, total });
      const progress = { code: param.code, type, done, total, cursor: { type, after: batch[batch.length - 1]._id } };
      options.onProgress?.(progress);
      return !options.onBatch || (await options.onBatch(progress));
    };
    for await (const batch of pages) {
      if (!(await flush(batch))) return false;
    }
  }
  if (superseded()) return false;
  registry.setStatus(param, 'active', { done, total });
  return true;
}

/** Writes one batch's values, re-reading and recomputing the documents a commit replaced meanwhile. */
async function writeBatch(
  collection: Collection<CurrentDocument>,
  batch: CurrentDocument[],
  param: SearchParam,
  registry: SearchParameterRegistry,
  key: string,
): Promise<void> {
  let pending = batch;
  for (let round = 0; pending.length && round < MAX_ROUNDS; round++) {
    const result = await collection.bulkWrite(
      pending.map((doc) => indexUpdate(doc, param, registry, key)),
      { ordered: false },
    );
    if (result.matchedCount === pending.length) return;
    const seen = new Map(pending.map((doc) => [doc._id, doc.v]));
    const fresh = await collection
      .find({ _id: { $in: [...seen.keys()] } }, { projection: { _id: 1, v: 1, resource: 1 } })
      .toArray();
    // The ones still at the version read were written; a vanished one was an undone create.
    pending = fresh.filter((doc) => doc.v !== seen.get(doc._id));
  }
}

/** The update that sets (or clears) one parameter's values in a document, if it is still that version. */
function indexUpdate(
  doc: CurrentDocument,
  param: SearchParam,
  registry: SearchParameterRegistry,
  key: string,
): AnyBulkWriteOperation<CurrentDocument> {
  const elements = extractParam(doc.resource, param, registry);
  const filter = { _id: doc._id, v: doc.v };
  if (!elements.length) {
    return { updateOne: { filter, update: { $unset: { [`sp.${key}`]: '', [`sp.${SORT_KEY}.${key}`]: '' } } } };
  }
  const value = elements.length === 1 ? { ...elements[0], [SINGLE]: true } : elements;
  const sort = sortValue(param.type, elements);
  return { updateOne: { filter, update: { $set: { [`sp.${key}`]: value, [`sp.${SORT_KEY}.${key}`]: sort ?? null } } } };
}
