import type { SearchParameter } from '@medplum/fhirtypes';
import type { AnyBulkWriteOperation, Db } from 'mongodb';
import type { CurrentDocument } from '../store/documents';
import { extractParam, sortValue } from './extract';
import { encodeCode, SINGLE, SORT_KEY } from './keys';
import type { SearchParam, SearchParameterRegistry } from './registry';
import { resourceTypes } from '../fhir/definitions';

export interface ReindexProgress {
  code: string;
  type: string;
  done: number;
  total: number;
}

const BATCH = 500;

/**
 * Makes a runtime SearchParameter searchable: registers it (so that every write from now on indexes
 * it), walks each base type's collection in _id order and sets `sp.<code>` on every document, then
 * marks it active. Each update is guarded by the version read (`v`), so a concurrent write, which
 * already indexed the parameter itself, is never overwritten with older values.
 */
export async function reindex(
  db: Db,
  registry: SearchParameterRegistry,
  definition: SearchParameter,
  onProgress?: (progress: ReindexProgress) => void,
): Promise<SearchParam> {
  const known = definition.url ? registry.byDefinitionUrl(definition.url) : undefined;
  const param = known?.definition === definition ? known : registry.add(definition);
  registry.setStatus(param, 'reindexing', { done: 0, total: 0 });
  const key = encodeCode(param.code);
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  const types = param.base
    .flatMap((b) => (b === 'Resource' || b === 'DomainResource' ? resourceTypes() : [b]))
    .filter((t) => existing.has(t));
  let done = 0;
  let total = 0;
  for (const type of types) total += await db.collection(type).countDocuments({});
  for (const type of types) {
    const collection = db.collection<CurrentDocument>(type);
    let after: string | undefined;
    for (;;) {
      const batch = await collection
        .find(after === undefined ? {} : { _id: { $gt: after } }, {
          sort: { _id: 1 },
          limit: BATCH,
          projection: { _id: 1, v: 1, resource: 1 },
        })
        .toArray();
      if (!batch.length) break;
      const operations: AnyBulkWriteOperation<CurrentDocument>[] = batch.map((doc) => {
        const elements = extractParam(doc.resource, param, registry);
        const filter = { _id: doc._id, v: doc.v };
        if (!elements.length)
          return { updateOne: { filter, update: { $unset: { [`sp.${key}`]: '', [`sp.${SORT_KEY}.${key}`]: '' } } } };
        const value = elements.length === 1 ? { ...elements[0], [SINGLE]: true } : elements;
        const sort = sortValue(param.type, elements);
        return {
          updateOne: { filter, update: { $set: { [`sp.${key}`]: value, [`sp.${SORT_KEY}.${key}`]: sort ?? null } } },
        };
      });
      await collection.bulkWrite(operations, { ordered: false });
      done += batch.length;
      after = batch[batch.length - 1]._id;
      registry.setStatus(param, 'reindexing', { done, total });
      onProgress?.({ code: param.code, type, done, total });
    }
  }
  registry.setStatus(param, 'active', { done, total });
  return param;
}
