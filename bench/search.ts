/**
 * Search benchmark (issue 4): loads a generated cohort straight into the collections (documents built
 * exactly as the store builds them, `sp` from extractSearchIndex) and times the query mix through
 * search(). Usage:
 *   npx tsx bench/search.ts [--patients 9524] [--runs 20] [--reuse]
 * MONGODB_URI selects the engine; without it the embedded FerretDB starts with its data under
 * .cache/bench-search (kept, so --reuse skips the load). Each query prints p50/p95 and result sizes.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { MongoClient } from 'mongodb';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { search, SearchParameterRegistry } from '../src/search';
import { loadCohort, PER_PATIENT } from './search-cohort';
import { QUERIES } from './search-queries';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const patients = arg('patients', 9524);
const runs = arg('runs', 20);
const reuse = args.includes('--reuse');
const BASE = 'http://bench/fhir';
const options = { maxCount: 100, defaultCount: 20, pageSecret: 'bench' };

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    const dataDir = join(__dirname, '..', '.cache', 'bench-search');
    mkdirSync(dataDir, { recursive: true });
    engine = await startEmbeddedEngine({ dataDir });
    uri = engine.uri;
  }
  const client = await MongoClient.connect(uri);
  const db = client.db(`bench_search_${patients}`);
  const registry = new SearchParameterRegistry();
  const existing = await db.collection('Patient').estimatedDocumentCount();
  if (!reuse || existing !== patients) {
    await db.dropDatabase();
    const started = Date.now();
    await loadCohort(db, registry, patients, (done) => {
      const s = (Date.now() - started) / 1000;
      process.stdout.write(
        `\rloaded ${done * PER_PATIENT} resources in ${s.toFixed(0)} s (${Math.round((done * PER_PATIENT) / s)}/s)`,
      );
    });
    console.log(`\nload: ${patients * PER_PATIENT + 50} resources in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  let total = 0;
  for (const c of await db.listCollections().toArray()) total += await db.collection(c.name).estimatedDocumentCount();
  console.log(
    `dataset: ${total} resources, ${patients} patients; ${runs} runs per query; engine ${engine ? 'embedded FerretDB (scans, no index use)' : uri}`,
  );

  const rows: string[][] = [];
  for (const q of QUERIES) {
    const times: number[] = [];
    let matches = 0;
    let included = 0;
    for (let r = 0; r < runs; r++) {
      const i = (r * 7919) % patients;
      let query = q.query(i);
      if (q.page) {
        // Walk to the page before, untimed, then time fetching the last page by its cursor link.
        for (let p = 1; p < q.page; p++) {
          const b = await search(
            db,
            { resourceType: q.type, params: new URLSearchParams(query), baseUrl: BASE },
            registry,
            options,
          );
          const next = b.link?.find((l) => l.relation === 'next')?.url;
          if (!next) break; // smaller datasets: time the last page there is
          query = new URL(next).search.slice(1);
        }
        if (r >= 3) break; // the walk is long on a scanning engine: 3 timed samples of page 50
      }
      const started = process.hrtime.bigint();
      const bundle: Bundle = await search(
        db,
        { resourceType: q.type, params: new URLSearchParams(query), baseUrl: BASE },
        registry,
        options,
      );
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      matches += bundle.entry?.filter((e) => e.search?.mode === 'match').length ?? 0;
      included += bundle.entry?.filter((e) => e.search?.mode === 'include').length ?? 0;
    }
    times.sort((a, b) => a - b);
    rows.push([
      q.name,
      String(times.length),
      percentile(times, 50).toFixed(1),
      percentile(times, 95).toFixed(1),
      (matches / times.length).toFixed(1),
      (included / times.length).toFixed(1),
    ]);
  }
  const header = ['query', 'n', 'p50 ms', 'p95 ms', 'matches/page', 'included/page'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, c) => cell.padEnd(widths[c])).join('  '));
  await client.close();
  await engine?.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
