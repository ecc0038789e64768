/**
 * Explain plans of the search benchmark's queries (issue 4: "a benchmark query that falls back to a
 * collection scan is a bug"). Loads a small cohort into its own database, then prints per query the
 * MongoDB filter and sort that search() sends and the index meant to answer it (src/search/explain.ts).
 * On a real MongoDB (MONGODB_URI without `ferretdbVersion` in buildInfo) it also prints the winning
 * plan of explain() and exits 1 on a COLLSCAN or on a query with no planned index; on the embedded
 * FerretDB it prints the SQLite plan and exits 1 when it does not use an index. Usage:
 *   npx tsx bench/search-explain.ts            (embedded FerretDB, data under .benchdata/explain)
 *   MONGODB_URI=mongodb://host/ npx tsx bench/search-explain.ts
 */
import { MongoClient, type Db, type Document } from 'mongodb';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { explainSearch, search, SearchParameterRegistry } from '../src/search';
import { ENGINE_INDEXED_PLAN } from '../src/search/explain';
import { loadCohort } from './search-cohort';
import { QUERIES, type BenchQuery } from './search-queries';
import { STRING_AND_TOKEN_QUERIES } from './search-queries-extra';

const PATIENTS = 200;
const BASE = 'http://bench/fhir';
const options = { maxCount: 100, defaultCount: 20, pageSecret: 'bench' };

/** The query string the benchmark sends; for a deep-paging query, that of a real second page. */
async function benchQuery(db: Db, registry: SearchParameterRegistry, q: BenchQuery): Promise<string> {
  const first = q.query(1);
  if (!q.page) return first;
  const params = new URLSearchParams(first);
  const bundle = await search(db, { resourceType: q.type, params, baseUrl: BASE }, registry, options);
  const next = bundle.link?.find((l) => l.relation === 'next')?.url;
  return next ? new URL(next).search.slice(1) : first;
}

/** The stages of a MongoDB winning plan from the root down, e.g. "LIMIT <- FETCH <- IXSCAN sp_x". */
function stagesOf(plan: Document | undefined): string[] {
  const stages: string[] = [];
  for (let node = plan; node; node = (node.inputStage ?? node.inputStages?.[0]) as Document | undefined) {
    stages.push(node.indexName ? `${node.stage} ${node.indexName}` : String(node.stage));
  }
  return stages;
}

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    const dataDir = join(__dirname, '..', '.benchdata', 'explain');
    mkdirSync(dataDir, { recursive: true });
    engine = await startEmbeddedEngine({ dataDir });
    uri = engine.uri;
  }
  const client = await MongoClient.connect(uri);
  const db = client.db('bench_search_explain');
  const info = await db.command({ buildInfo: 1 });
  const ferret = typeof info.ferretdbVersion === 'string' ? info.ferretdbVersion : undefined;
  console.log(
    ferret
      ? `engine: FerretDB (buildInfo ferretdbVersion "${ferret}") with our pushdown patch: the string and date ` +
          'conditions of a filter go to SQLite, which answers them from the multikey side tables createIndex built ' +
          '(before the first query); the SQLite plan must SEARCH a side table (or the _id index). The planned ' +
          'index is what MongoDB would use, reviewed by reading.'
      : `engine: MongoDB ${String(info.version)}; explain() must show an index scan for every query.`,
  );
  const registry = new SearchParameterRegistry();
  await db.dropDatabase();
  await loadCohort(db, registry, PATIENTS, () => undefined);

  let failures = 0;
  for (const q of [...QUERIES, ...STRING_AND_TOKEN_QUERIES]) {
    const query = await benchQuery(db, registry, q);
    const explained = await explainSearch(db, registry, q.type, query, options);
    console.log(`\n## ${q.name}${q.page ? ' (keyset filter of a real second page)' : ''}`);
    console.log(`GET ${q.type}?${query.length > 160 ? `${query.slice(0, 160)}…` : query}`);
    console.log(`filter:  ${JSON.stringify(explained.filter)}`);
    console.log(`sort:    ${JSON.stringify(explained.sort)}`);
    console.log(`planned: ${explained.plannedIndex ?? 'NONE (collection scan)'} (intended ${q.index})`);
    if (explained.plannedIndex !== q.index) failures++;
    const plan = await db
      .collection(q.type)
      .find(explained.filter, { sort: explained.sort, limit: 21 })
      .explain('queryPlanner');
    if (ferret) {
      // loadCohort created the indexes, so even a first explain shows the plan queries get.
      const sqlitePlan = JSON.stringify((plan.queryPlanner as Document | undefined)?.Plan ?? plan.queryPlanner);
      console.log(`SQLite plan: ${sqlitePlan}`);
      if (!ENGINE_INDEXED_PLAN.test(sqlitePlan)) failures++;
      continue;
    }
    const stages = stagesOf((plan.queryPlanner as Document | undefined)?.winningPlan as Document | undefined);
    console.log(`winning: ${stages.join(' <- ')}`);
    if (stages.some((s) => s.startsWith('COLLSCAN'))) failures++;
  }
  await db.dropDatabase();
  await client.close();
  await engine?.stop();
  if (failures) {
    console.error(`\n${failures} problem(s): a query without its intended index or with a collection scan`);
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
