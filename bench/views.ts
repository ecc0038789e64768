/**
 * $viewdefinition-run of a shipped view (issue 13) through the real Express app: loads N patients
 * (bench/search-cohort.ts, 21 resources each, 6 fills per patient) straight into the collections, then
 * streams the `dispenses` view over HTTP in each format and prints rows/s and the process's peak RSS
 * while each run streams (sampled every 20 ms; the server and this client share the process, and the
 * client only counts bytes and lines).
 * Usage:
 *   npx tsx bench/views.ts [--patients 2000] [--view dispenses] [--reuse]
 * MONGODB_URI selects the engine; without it the embedded FerretDB starts with its data under
 * .cache/bench-views (kept, so --reuse skips the load).
 */
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createServerContext } from '../src/app-context';
import { loadConfig } from '../src/config';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { createApp } from '../src/http/app';
import { SearchParameterRegistry } from '../src/search';
import { loadCohort } from './search-cohort';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const patients = Number(arg('patients', '2000'));
const view = arg('view', 'dispenses');
const reuse = args.includes('--reuse');
const MIB = 1024 * 1024;

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    const dataDir = join(__dirname, '..', '.cache', 'bench-views');
    mkdirSync(dataDir, { recursive: true });
    engine = await startEmbeddedEngine({ dataDir });
    uri = engine.uri;
  }
  // Authorization off: the view's own cost (the access filter of a system/*.rs token adds nothing).
  const config = {
    ...loadConfig({ AUTH: 'off' }),
    databaseName: `bench_views_${patients}`,
    publicBaseUrl: 'http://bench/fhir',
  };
  const running = await createServerContext(config, uri, pino({ level: 'silent' }));
  const db = running.connection.db;
  if (!reuse || (await db.collection('Patient').estimatedDocumentCount()) !== patients) {
    for (const c of await db.listCollections().toArray()) {
      if (!c.name.startsWith('_') && c.name !== 'ViewDefinition' && c.name !== 'OperationDefinition') {
        await db.collection(c.name).deleteMany({});
      }
    }
    const started = Date.now();
    await loadCohort(db, new SearchParameterRegistry(), patients, (done) =>
      process.stdout.write(`\rloaded ${done} patients`),
    );
    console.log(`\nload: ${patients} patients in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const resourceType = (
    (await db.collection('ViewDefinition').findOne({ _id: view as never })) as {
      resource?: { resource?: string };
    } | null
  )?.resource?.resource;
  if (!resourceType) throw new Error(`ViewDefinition/${view} is not stored`);
  const documents = await db.collection(resourceType).estimatedDocumentCount();

  const server = createApp(running.context).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  console.log(
    `dataset: ${patients} patients, ${documents} ${resourceType}; engine ${engine ? 'embedded FerretDB 1.24 on SQLite' : uri}; ` +
      `node ${process.version}, ${cpus().length} cores (shared); view ${view}`,
  );

  const results: string[][] = [];
  for (const format of ['csv', 'ndjson', 'json', 'csv']) {
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const started = performance.now();
    const response = await fetch(`${base}/ViewDefinition/${view}/$viewdefinition-run?_format=${format}`);
    if (response.status !== 200) throw new Error(`run failed: ${response.status} ${await response.text()}`);
    let bytes = 0;
    let newlines = 0;
    let commas = 0;
    const reader = response.body?.getReader();
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      bytes += chunk.value.length;
      for (const b of chunk.value) {
        if (b === 10) newlines++;
        else if (b === 125) commas++; // '}': one per row object in a JSON array
      }
    }
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const rows = format === 'csv' ? newlines - 1 : format === 'ndjson' ? newlines : commas;
    results.push([
      format,
      String(rows),
      (bytes / MIB).toFixed(1),
      seconds.toFixed(2),
      Math.round(rows / seconds).toString(),
      (before / MIB).toFixed(0),
      (peak / MIB).toFixed(0),
    ]);
  }
  const header = ['format', 'rows', 'MiB', 'seconds', 'rows/s', 'RSS before MiB', 'peak RSS MiB'];
  const widths = header.map((h, c) => Math.max(h.length, ...results.map((r) => r[c].length)));
  for (const row of [header, ...results]) console.log(row.map((cell, c) => cell.padEnd(widths[c])).join('  '));

  await new Promise((resolve) => server.close(resolve));
  await running.close();
  await engine?.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
