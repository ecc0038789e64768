import type { AnyBulkWriteOperation, Db } from 'mongodb';
import type { CurrentDocument } from '../store/documents';
import { extractParam, sortValue } from './extract';
import { encodeCode, SINGLE, SORT_KEY } from './keys';
import type { WriteGate } from '../store/write-gate';
import { expandBases, type SearchParam, type SearchParameterRegistry } from './registry';

export interface ReindexProgress {
  code: string;
  type: string;
  done: number;
  total: number;
}

/**
 * Small batches: commits on the type wait for a batch (see WriteGate), so it must stay short. Below 100
 * too: the embedded FerretDB 1.24 never answers an update command of 100 or more statements (measured:
 * 99 return in about 0.6 s, 100 hang), and bulkWrite sends a batch as one such command.
 */
const BATCH = 50;

export interface ReindexOptions {
  onProgress?: (progress: ReindexProgress) => void;
  /** The store's gate; without it (tests on a quiet database) batches run unguarded. */
  gate?: WriteGate;
}

/**
 * Makes a registered runtime SearchParameter searchable: every write from now on already indexes it
 * (the registry knows it), so this walks each base type's collection in _id order, sets `sp.<code>` on
 * every document, then marks the parameter active. Each update is guarded by the version read (`v`),
 * and each batch runs under the gate exclusively, so a concurrent commit, which indexes the parameter
 * itself, is never overwritten with older values. Stops, answering false, as soon as the registry holds
 * another definition for the url (a newer version, or the parameter was deleted).
 */
export async function reindex(
  db: Db,
  registry: SearchParameterRegistry,
  param: SearchParam,
  options: ReindexOptions = {},
): Promise<boolean> {
  const superseded = () => param.url !== undefined && registry.byDefinitionUrl(param.url) !== param;
  registry.setStatus(param, 'reindexing', { done: 0, total: 0 });
  const key = encodeCode(param.code);
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  const types = expandBases(param.base).filter((t) => existing.has(t));
  let done = 0;
  let total = 0;
  for (const type of types) total += await db.collection(type).countDocuments({});
  const guarded = <T>(type: string, work: () => Promise<T>) =>
    options.gate ? options.gate.exclusive(type, work) : work();
  for (const type of types) {
    const collection = db.collection<CurrentDocument>(type);
    let after: string | undefined;
    for (;;) {
      if (superseded()) return false;
      const count = await guarded(type, async () => {
        const batch = await collection
          .find(after === undefined ? {} : { _id: { $gt: after } }, {
            sort: { _id: 1 },
            limit: BATCH,
            projection: { _id: 1, v: 1, resource: 1 },
          })
          .toArray();
        if (batch.length) {
          await collection.bulkWrite(
            batch.map((doc) => indexUpdate(doc, param, registry, key)),
            { ordered: false },
          );
          after = batch[batch.length - 1]._id;
        }
        return batch.length;
      });
      if (!count) break;
      done += count;
      registry.setStatus(param, 'reindexing', { done, total });
      options.onProgress?.({ code: param.code, type, done, total });
    }
  }
  if (superseded()) return false;
  registry.setStatus(param, 'active', { done, total });
  return true;
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
