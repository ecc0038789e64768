/**
 * Search benchmark (issue 4): loads a generated cohort straight into the collections (documents built
 * by ResourceStore.stage with the server's indexer, see search-cohort.ts) and times the query mix
 * through search(), in process. Usage:
 *   npx tsx bench/search.ts [--patients 9524] [--runs 20] [--page-runs 3] [--reuse] [--indexes-first]
 *     [--engine path/to/binary] [--data name]
 * (`npm run bench:search -- ...`). MONGODB_URI selects the engine; without it the embedded FerretDB
 * starts with its data under .benchdata/search (kept, so --reuse skips the load). Prints p50/p95 per
 * query with the matches per page and the total, load time, and the peak RSS of this process and of
 * the embedded engine. `--indexes-first` creates the indexes before the load (so the load pays for
 * maintaining them, as a running server does); `--engine` and `--data` compare two engine builds on
 * two data directories in one sitting.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { MongoClient, type Db } from 'mongodb';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { search, SearchParameterRegistry } from '../src/search';
import { loadCohort, PER_PATIENT } from './search-cohort';
import { QUERIES, type BenchQuery } from './search-queries';
import { STRING_AND_TOKEN_QUERIES } from './search-queries-extra';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const patients = arg('patients', 9524);
const runs = arg('runs', 20);
// Reaching page 50 costs 49 untimed searches per sample; on a scanning engine each one reads the
// whole collection, so the deep page gets fewer samples.
const pageRuns = arg('page-runs', 3);
const reuse = args.includes('--reuse');
const indexesFirst = args.includes('--indexes-first');
const argText = (name: string) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};
const engineBinary = argText('engine');
const dataName = argText('data') ?? 'search';
const BASE = 'http://bench/fhir';
const options = { maxCount: 100, defaultCount: 20, pageSecret: 'bench' };

/** Nearest-rank percentile of sorted samples. */
const percentile = (sorted: number[], p: number) =>
  sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))];

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/** Peak resident set of another process (VmHWM), where /proc exists. */
function peakRssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmHWM:'));
    return line ? Number(line.replace(/\D/g, '')) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function run(db: Db, registry: SearchParameterRegistry, type: string, query: string): Promise<Bundle> {
  return search(db, { resourceType: type, params: new URLSearchParams(query), baseUrl: BASE }, registry, options);
}

/** Follows next links to the page before `q.page`, untimed; returns the query of the page to time. */
async function walkTo(db: Db, registry: SearchParameterRegistry, q: BenchQuery, query: string): Promise<string> {
  for (let p = 1; p < (q.page ?? 1); p++) {
    const next = (await run(db, registry, q.type, query)).link?.find((l) => l.relation === 'next')?.url;
    if (!next) break; // smaller datasets: time the last page there is
    query = new URL(next).search.slice(1);
  }
  return query;
}

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    const dataDir = join(__dirname, '..', '.benchdata', dataName);
    mkdirSync(dataDir, { recursive: true });
    engine = await startEmbeddedEngine({ dataDir, ...(engineBinary ? { binary: engineBinary } : {}) });
    uri = engine.uri;
  }
  const client = await MongoClient.connect(uri);
  const db = client.db(`bench_search_${patients}`);
  const registry = new SearchParameterRegistry();
  const existing = await db.collection('Patient').estimatedDocumentCount();
  const load = !reuse || existing !== patients;
  if (load) {
    await db.dropDatabase();
    const started = Date.now();
    await loadCohort(
      db,
      registry,
      patients,
      (done) => {
        const s = (Date.now() - started) / 1000;
        process.stdout.write(
          `\rloaded ${done * PER_PATIENT} resources in ${s.toFixed(0)} s (${Math.round((done * PER_PATIENT) / s)}/s)`,
        );
      },
      {
        indexesFirst,
        onIndexes: (ms) =>
          console.log(`\nindexes: ${(ms / 1000).toFixed(1)} s to create ${indexesFirst ? 'before' : 'after'} the load`),
      },
    );
    const seconds = (Date.now() - started) / 1000;
    const loaded = patients * PER_PATIENT + 50;
    console.log(
      `\nload: ${loaded} resources in ${seconds.toFixed(1)} s (${Math.round(loaded / seconds)}/s), ` +
        (indexesFirst ? 'indexes created first and maintained by the load' : 'indexes created after the load'),
    );
  }
  if (load) {
    // Counting is a scan per collection on FerretDB (minutes at 200,000), so only after a load.
    const sizes: string[] = [];
    let total = 0;
    for (const c of await db.listCollections().toArray()) {
      const n = await db.collection(c.name).estimatedDocumentCount();
      total += n;
      sizes.push(`${c.name} ${n}`);
    }
    console.log(`dataset: ${total} resources, ${patients} patients (${sizes.sort().join(', ')})`);
  } else console.log(`dataset: reused, ${existing} patients (${PER_PATIENT} resources each, plus 50 Medications)`);
  console.log(
    `engine: ${engine ? 'embedded FerretDB 1.24 (SQLite, with our pushdown of string equalities and ranges to expression indexes)' : uri}; ` +
      `${runs} runs per query, ${pageRuns} for the deep page`,
  );

  const header = ['query', 'runs', 'p50 ms', 'p95 ms', 'matches/page', 'included/page', 'Bundle.total'];
  const rows: string[][] = [];
  for (const q of [...QUERIES, ...STRING_AND_TOKEN_QUERIES]) {
    const times: number[] = [];
    let matches = 0;
    let included = 0;
    let totals = 0;
    const samples = q.page ? pageRuns : runs;
    for (let r = 0; r < samples; r++) {
      // Vary the patient (and month) hit from run to run, deterministically.
      const i = (r * 7919) % patients;
      const query = q.page ? await walkTo(db, registry, q, q.query(i)) : q.query(i);
      const started = process.hrtime.bigint();
      const bundle = await run(db, registry, q.type, query);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      matches += bundle.entry?.filter((e) => e.search?.mode === 'match').length ?? 0;
      included += bundle.entry?.filter((e) => e.search?.mode === 'include').length ?? 0;
      totals += bundle.total ?? 0;
    }
    if (!times.length) continue; // --runs 0: load only
    times.sort((a, b) => a - b);
    rows.push([
      q.name,
      String(times.length),
      percentile(times, 50).toFixed(0),
      percentile(times, 95).toFixed(0),
      (matches / times.length).toFixed(1),
      (included / times.length).toFixed(1),
      (totals / times.length).toFixed(1),
    ]);
    // As it goes, since a run on a scanning engine takes a while.
    console.log(rows[rows.length - 1].map((cell, c) => `${header[c]}: ${cell}`).join(', '));
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  console.log('');
  for (const row of [header, ...rows]) console.log(row.map((cell, c) => cell.padEnd(widths[c])).join('  '));
  const engineRss = peakRssOf(engine?.pid);
  console.log(
    `peak RSS: benchmark process (search code) ${mib(process.resourceUsage().maxRSS * 1024)}` +
      (engineRss !== undefined ? `, embedded engine ${mib(engineRss)}` : ''),
  );
  await client.close();
  await engine?.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
