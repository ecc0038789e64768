/**
 * Patient/[id]/$medication-review through the real Express app (issue 6): loads N patients with a year
 * of history (bench/review-cohort.ts, ~50 resources each) straight into the collections, documents built
 * by ResourceStore.stage exactly as a write builds them (compartments included), then times GET
 * $medication-review over HTTP at concurrency 1 and 4 and prints p50/p95 latency and reviews per second.
 * Usage:
 *   npx tsx bench/medication-review.ts [--patients 200] [--reviews 400] [--reuse]
 * MONGODB_URI selects the engine; without it the embedded FerretDB starts with its data under
 * .cache/bench-review (kept, so --reuse skips the load). Compartment queries are index look-ups there
 * too, through our pushdown patch of FerretDB (tools/ferretdb/patch).
 */
import type { Parameters, Resource } from '@medplum/fhirtypes';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import pino from 'pino';
import { createServerContext } from '../src/app-context';
import { loadConfig } from '../src/config';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { createApp } from '../src/http/app';
import { REVIEW_TYPES } from '../src/modules/review/definitions';
import { history, REVIEW_DATE } from './review-cohort';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const patients = arg('patients', 200);
const reviews = arg('reviews', 400);
const reuse = args.includes('--reuse');

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    const dataDir = join(__dirname, '..', '.cache', 'bench-review');
    mkdirSync(dataDir, { recursive: true });
    engine = await startEmbeddedEngine({ dataDir });
    uri = engine.uri;
  }
  // The review's own cost: authorization is off here (bench/scale.ts --auth on|off measures what it adds).
  const config = {
    ...loadConfig({ AUTH: 'off' }),
    databaseName: `bench_review_${patients}`,
    publicBaseUrl: 'http://bench/fhir',
  };
  const running = await createServerContext(config, uri, pino({ level: 'silent' }));
  const { store } = running.context;
  const db = running.connection.db;

  const existing = await db.collection('Patient').estimatedDocumentCount();
  if (!reuse || existing !== patients) {
    for (const c of await db.listCollections().toArray())
      if (!c.name.startsWith('_')) await db.collection(c.name).deleteMany({});
    const started = Date.now();
    let count = 0;
    for (let i = 0; i < patients; i++) {
      const byType = new Map<string, Resource[]>();
      for (const r of history(i)) byType.set(r.resourceType, [...(byType.get(r.resourceType) ?? []), r]);
      for (const [type, resources] of byType) {
        // The documents a PUT would store (ids, meta, compartments), inserted without the journal.
        const staged = store.stage(
          resources.map((resource) => ({ type, id: resource.id as string, method: 'PUT', previous: null, resource })),
        );
        await db.collection(type).insertMany(staged.map((s) => s.next) as never[]);
        count += resources.length;
      }
      if (i % 20 === 19) process.stdout.write(`\rloaded ${count} resources (${i + 1} patients)`);
    }
    console.log(`\nload: ${count} resources in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  let total = 0;
  for (const c of await db.listCollections().toArray()) total += await db.collection(c.name).estimatedDocumentCount();

  const server = createApp(running.context).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  const url = (i: number) => `${base}/Patient/bench-${(i * 7919) % patients}/$medication-review?date=${REVIEW_DATE}`;

  // Warm-up: compiles, JIT, connection pool; also checks the answers look right.
  let findings = 0;
  for (let i = 0; i < 20; i++) {
    const response = await fetch(url(i));
    if (response.status !== 200) throw new Error(`review failed: ${response.status} ${await response.text()}`);
    findings += ((await response.json()) as Parameters).parameter?.filter((p) => p.name === 'finding').length ?? 0;
  }

  console.log(
    `dataset: ${total} documents, ${patients} patients (~${Math.round((total - patients) / patients)} resources each); ` +
      `engine ${engine ? 'embedded FerretDB 1.24 on SQLite, with our pushdown to expression indexes' : uri}; ` +
      `node ${process.version}, ${cpus().length} cores (shared); ${REVIEW_TYPES.length} compartment queries + Medication look-ups per review; ` +
      `${(findings / 20).toFixed(1)} findings per review`,
  );
  const rows: string[][] = [];
  for (const concurrency of [1, 4]) {
    const times: number[] = [];
    let next = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < reviews) {
        const i = next++;
        const t = performance.now();
        const response = await fetch(url(i));
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`review failed: ${response.status}`);
        times.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const wall = (performance.now() - started) / 1000;
    times.sort((a, b) => a - b);
    rows.push([
      String(concurrency),
      String(times.length),
      percentile(times, 50).toFixed(1),
      percentile(times, 95).toFixed(1),
      (times.length / wall).toFixed(1),
    ]);
  }
  const header = ['concurrency', 'reviews', 'p50 ms', 'p95 ms', 'reviews/s'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, c) => cell.padEnd(widths[c])).join('  '));

  await new Promise((resolve) => server.close(resolve));
  await running.close();
  await engine?.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
