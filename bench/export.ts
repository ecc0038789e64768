/**
 * Bulk Data $export benchmark (issue 13): loads the search benchmark's generated cohort (21 resources
 * per patient plus 50 Medications, bench/search-cohort.ts) straight into the collections, starts the
 * server as its own process on that database, runs a system-level `$export` of everything through HTTP
 * as a real client does (kick-off, polls waiting Retry-After, then every file streamed and counted), and
 * prints resources/s of the export and of the downloads, with the server's peak RSS. Usage:
 *   npx tsx bench/export.ts [--patients 952] [--reuse] [--file-max 10000] [--uncleared] [--dist]
 * 952 patients is about 20,000 resources; 9524 is the search benchmark's 200,054, and with --reuse the
 * database `bench:search` loaded is exported as it is. MONGODB_URI selects the engine; without it the
 * embedded FerretDB starts with its data under .benchdata/search (shared with bench/search.ts).
 * `--uncleared` exports as a system client without sensitivity clearance (the label filter applies);
 * `--dist` runs the compiled server (dist/server.js) instead of src/server.ts through tsx, whose
 * compiler adds to the server's RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { MongoClient } from 'mongodb';
import { freePort, startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { SearchParameterRegistry } from '../src/search';
import { loadCohort, PER_PATIENT } from './search-cohort';
import { serverNodeFlags } from '../scripts/server-node-flags.mjs';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const patients = arg('patients', 952);
const fileMax = arg('file-max', 10_000);
const reuse = args.includes('--reuse');
const uncleared = args.includes('--uncleared');
/** Run the compiled server (`npx tsc -p tsconfig.build.json` first) rather than the sources through tsx. */
const compiled = args.includes('--dist');
const SECRET = 'bench-export-secret-of-at-least-32-characters';
const ROOT = join(__dirname, '..');

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A field of /proc/<pid>/status in bytes (VmRSS now, VmHWM the peak), where /proc exists. */
function procBytes(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    return line ? Number(line.replace(/\D/g, '')) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every 100 ms; `peak` is the highest seen since the last reset. */
function rssSampler(pid: number | undefined) {
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, procBytes(pid, 'VmRSS') ?? 0);
  }, 100);
  return {
    reset: () => (peak = procBytes(pid, 'VmRSS') ?? 0),
    peak: () => peak,
    stop: () => clearInterval(timer),
  };
}

async function startServer(uri: string, database: string): Promise<{ child: ChildProcess; base: string }> {
  const port = await freePort();
  const entry = compiled ? [join(ROOT, 'dist', 'server.js')] : ['--import', 'tsx', join(ROOT, 'src', 'server.ts')];
  // The heap settings `npm start` gives the server, unless NODE_OPTIONS sets its own.
  const child = spawn(process.execPath, [...serverNodeFlags(), ...entry], {
    cwd: ROOT,
    env: {
      ...process.env,
      MONGODB_URI: uri,
      MONGODB_DATABASE: database,
      PORT: String(port),
      HOST: '127.0.0.1',
      AUTH_HS256_SECRET: SECRET,
      EXPORT_POLL_SECONDS: '1',
      EXPORT_FILE_MAX_RESOURCES: String(fileMax),
      LOG_LEVEL: 'warn',
      SERVER_ID: 'bench-export',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 1200; i++) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    const ready = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { child, base: `${base}/fhir` };
    await sleep(250);
  }
  throw new Error('the server did not become ready');
}

interface Manifest {
  output: { type: string; url: string; count: number }[];
}

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    const dataDir = join(ROOT, '.benchdata', 'search');
    mkdirSync(dataDir, { recursive: true });
    engine = await startEmbeddedEngine({ dataDir });
    uri = engine.uri;
  }
  const database = `bench_search_${patients}`;
  const client = await MongoClient.connect(uri);
  const db = client.db(database);
  const existing = await db.collection('Patient').estimatedDocumentCount();
  if (!reuse || existing !== patients) {
    await db.dropDatabase();
    const started = Date.now();
    await loadCohort(db, new SearchParameterRegistry(), patients, (done) =>
      process.stdout.write(
        `\rloaded ${done * PER_PATIENT} resources in ${((Date.now() - started) / 1000).toFixed(0)} s`,
      ),
    );
    console.log('');
  }
  await client.close();
  const loaded = patients * PER_PATIENT + 50;

  const { child, base } = await startServer(uri, database);
  const rss = rssSampler(child.pid);
  try {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({
      sub: 'bench-export',
      scope: 'system/*.rs',
      ...(uncleared ? {} : { clearance: ['*'] }),
      iat: now,
      exp: now + 6 * 3600,
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(SECRET));
    const headers = { Authorization: `Bearer ${token}`, Accept: 'application/fhir+json' };
    const startupRss = procBytes(child.pid, 'VmRSS') ?? 0;
    rss.reset();

    const started = Date.now();
    const kick = await fetch(`${base}/$export`, { headers: { ...headers, Prefer: 'respond-async' } });
    if (kick.status !== 202) throw new Error(`kick-off: ${kick.status} ${await kick.text()}`);
    const status = kick.headers.get('content-location') as string;
    let manifest: Manifest | undefined;
    let polls = 0;
    while (!manifest) {
      const poll = await fetch(status, { headers });
      polls++;
      if (poll.status === 200) manifest = (await poll.json()) as Manifest;
      else if (poll.status === 202) {
        process.stdout.write(`\r${poll.headers.get('x-progress')}          `);
        await sleep(Number(poll.headers.get('retry-after') ?? 1) * 1000);
      } else throw new Error(`status: ${poll.status} ${await poll.text()}`);
    }
    const exportSeconds = (Date.now() - started) / 1000;
    const exportPeak = rss.peak();
    const counted = manifest.output.reduce((n, f) => n + f.count, 0);
    console.log('');

    rss.reset();
    const downloadStarted = Date.now();
    let lines = 0;
    let bytes = 0;
    for (const file of manifest.output) {
      const response = await fetch(file.url, { headers: { ...headers, Accept: 'application/fhir+ndjson' } });
      if (response.status !== 200 || !response.body) throw new Error(`file ${file.url}: ${response.status}`);
      const decoder = new TextDecoder();
      for await (const chunk of response.body) {
        bytes += chunk.byteLength;
        lines += (decoder.decode(chunk, { stream: true }).match(/\n/g) ?? []).length;
      }
    }
    const downloadSeconds = (Date.now() - downloadStarted) / 1000;
    const downloadPeak = rss.peak();

    const rows = [
      ['dataset', `${loaded} resources (${patients} patients)${reuse ? ', reused' : ''}`],
      ['server', compiled ? 'node dist/server.js' : 'node --import tsx src/server.ts'],
      ['requester', uncleared ? 'system/*.rs without clearance' : 'system/*.rs, cleared for every label'],
      ['exported', `${counted} resources in ${manifest.output.length} files (at most ${fileMax} per file)`],
      ['export', `${exportSeconds.toFixed(1)} s, ${Math.round(counted / exportSeconds)} resources/s (${polls} polls)`],
      [
        'download',
        `${lines} lines, ${mib(bytes)} in ${downloadSeconds.toFixed(1)} s, ${Math.round(lines / downloadSeconds)} resources/s`,
      ],
      [
        'server RSS',
        `after start-up ${mib(startupRss)}; peak during export ${mib(exportPeak)}, during download ${mib(downloadPeak)}`,
      ],
      ['server VmHWM', mib(procBytes(child.pid, 'VmHWM') ?? 0)],
      ['engine VmHWM', engine ? mib(procBytes(engine.pid, 'VmHWM') ?? 0) : 'not embedded'],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
    if (lines !== counted) throw new Error(`downloaded ${lines} lines, the manifest counts ${counted}`);
  } finally {
    rss.stop();
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await engine?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
