/**
 * FHIR search: the public surface of src/search.
 *
 * Wiring (see the module docs of each file):
 * - start-up: `const registry = new SearchParameterRegistry()`; for each `type` of `indexedTypes()`,
 *   `store.addIndexes(type, searchIndexes(type))` before `store.ensureIndexes(...)`.
 * - every write: the store's indexer sets `sp: extractSearchIndex(resource, registry)`.
 * - `GET [type]?…`, `POST [type]/_search`, `GET ?_type=…`: `search(db, request, registry, options)`.
 * - a SearchParameter is created: its rollout (src/modules/search-rollout.ts) registers it and reindexes in the background.
 */
export { SearchParameterRegistry, type SearchParam, type ParamStatus } from './registry';
export { extractSearchIndex, extractParam } from './extract';
export { searchIndexes, indexedTypes } from './indexes';
export { search, compileSearch, compileQuery, matchDocuments, type SearchRequest, type SearchOptions } from './search';
export { explainSearch, plannedIndex, type ExplainedSearch } from './explain';
export { reindex, type ReindexProgress } from './reindex';
export { compileFilter, type CompileContext } from './compile/query';
export { parseSearch, CURSOR_PARAM } from './parse';
