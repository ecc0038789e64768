/**
 * Scale benchmark (issue 10): loads a generated medication-management cohort as an EHR syncs it
 * (100-entry transaction Bundles with conditional creates and conditional references, several
 * clients), then, in the same server process and right after the load, runs a read/search mix and
 * single creates, sampling the memory of the server and of its engine throughout. Prints the
 * figures beside the issue's targets; exits 0 whatever they are (a benchmark, not a test).
 *
 *   npx tsx bench/scale.ts --spawn [--resources 100000] [--clients 4] [--mix-seconds 60]
 *       [--connections 10] [--create-seconds 20] [--seed 1] [--log-level info] [--auth on|off]
 *   npx tsx bench/scale.ts --base http://127.0.0.1:8181/fhir [--server-pid N] [--engine-pid M] ...
 *
 * --spawn starts this tree's `node dist/server.js` (compile it first: `npx tsc -p tsconfig.build.json`;
 * a dist/ older than src/ is refused) with a fresh DATA_DIR under .benchdata/scale-<timestamp> on a free
 * port; the engine is the server's child. With --base, identifiers carry --seed: use another seed to
 * load again into the same database.
 */
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import {
  directoryBundle,
  ENTRIES_PER_BUNDLE,
  mrnSystem,
  newPrescription,
  patientBundle,
  patientIdentity,
  PATIENTS_PER_BUNDLE,
  PHQ9,
  REVIEW_DATE,
  UDS_CODES,
} from './scale-cohort';
import { SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import {
  client,
  forSeconds,
  ms,
  printTable,
  send,
  summarize,
  useAuthorization,
  type Answer,
  type Client,
} from './scale-http';
import {
  childPid,
  cpuSeconds,
  mib,
  MemorySampler,
  spawnServer,
  stopServer,
  summarizeLog,
  type MemoryPeaks,
  type SpawnedServer,
} from './scale-process';
import { seededRandom } from './seeded-random';

interface Options {
  base?: string;
  spawn: boolean;
  serverPid?: number;
  enginePid?: number;
  resources: number;
  clients: number;
  mixSeconds: number;
  connections: number;
  createSeconds: number;
  seed: number;
  logLevel: string;
  /** Authorization on for the spawned server (--auth off: AUTH=off). */
  auth: boolean;
}

function parseOptions(args: string[]): Options {
  const value = (name: string) => {
    const at = args.indexOf(`--${name}`);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const num = (name: string, fallback?: number) => {
    const raw = value(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a number, not ${raw}`);
    return n;
  };
  const options: Options = {
    base: value('base'),
    spawn: args.includes('--spawn'),
    serverPid: num('server-pid'),
    enginePid: num('engine-pid'),
    resources: num('resources', 100_000) as number,
    clients: num('clients', 4) as number,
    mixSeconds: num('mix-seconds', 60) as number,
    connections: num('connections', 10) as number,
    createSeconds: num('create-seconds', 20) as number,
    seed: num('seed', 1) as number,
    logLevel: value('log-level') ?? 'info',
    auth: authOption(value('auth'), args.includes('--spawn')),
  };
  if (options.spawn === (options.base !== undefined)) throw new Error('give either --spawn or --base URL');
  if (options.resources < 2 * ENTRIES_PER_BUNDLE) throw new Error('--resources must be at least 200');
  return options;
}

/** --auth on (default with --spawn) or off: AUTH=off for the spawned server, to measure what access control costs. */
function authOption(raw: string | undefined, spawn: boolean): boolean {
  if (raw !== undefined && raw !== 'on' && raw !== 'off') throw new Error(`--auth is on or off, not ${raw}`);
  return spawn && raw !== 'off';
}

async function adminToken(secret: string): Promise<string> {
  return new SignJWT({ sub: 'bench-scale', scope: 'system/*.cruds', clearance: ['*'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('12h')
    .sign(new TextEncoder().encode(secret));
}

const TARGET = {
  ingestPerSecond: 600,
  ingestAt: 100_000,
  mixPerSecond: 150,
  mixP95: 100,
  slowMs: 1000,
  createRatio: 5,
  serverRss: 512 * 1024 * 1024,
};

// ---------------------------------------------------------------------------------------------------
// Ingest

/** A stored resource the mix reads back: type, id and the version the load wrote. */
interface Stored {
  type: string;
  id: string;
  vid: string;
}

interface IngestResult {
  resources: number;
  seconds: number;
  bundleLatencies: number[];
  /** When each successful Bundle finished (seconds since the load started), in finishing order. */
  finished: { at: number; ms: number }[];
  entryStatuses: Map<string, number>;
  failures: Map<string, number>;
  patients: Map<number, string>;
  samples: Stored[];
}

/** "Patient/abc/_history/1" or an absolute URL ending so. */
function parseLocation(location: string | undefined): Stored | undefined {
  const match = /([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})\/_history\/([A-Za-z0-9\-.]{1,64})$/.exec(location ?? '');
  return match ? { type: match[1], id: match[2], vid: match[3] } : undefined;
}

/** Records the outcome of one Bundle: entry statuses, patient ids, a few resources to read later. */
function recordBundle(result: IngestResult, bundleIndex: number, answer: Answer): void {
  const response = JSON.parse(answer.body) as Bundle;
  const entries: BundleEntry[] = response.entry ?? [];
  entries.forEach((entry, e) => {
    const status = entry.response?.status ?? '?';
    result.entryStatuses.set(status, (result.entryStatuses.get(status) ?? 0) + 1);
    const stored = parseLocation(entry.response?.location);
    if (!stored || bundleIndex < 0) return;
    const perPatient = ENTRIES_PER_BUNDLE / PATIENTS_PER_BUNDLE;
    if (e % perPatient === 0) result.patients.set(bundleIndex * PATIENTS_PER_BUNDLE + e / perPatient, stored.id);
    // A handful per Bundle, of every type, keeps the read targets spread over the whole load.
    if (e % 7 === 0) result.samples.push(stored);
  });
}

function countFailure(result: IngestResult, answer: Answer): void {
  const key = `${answer.status} ${answer.body.replace(/\s+/g, ' ').slice(0, 240)}`;
  result.failures.set(key, (result.failures.get(key) ?? 0) + 1);
}

async function postBundle(c: Client, bundle: Bundle): Promise<Answer> {
  // An EHR does not need the stored resources back; minimal keeps the answer to statuses and locations.
  return send(c, 'POST', '', { body: bundle, headers: { prefer: 'return=minimal' }, timeoutMs: 600_000 });
}

async function ingest(options: Options, base: string): Promise<IngestResult> {
  const c = client(base, options.clients);
  const result: IngestResult = {
    resources: 0,
    seconds: 0,
    bundleLatencies: [],
    finished: [],
    entryStatuses: new Map(),
    failures: new Map(),
    patients: new Map(),
    samples: [],
  };
  const started = performance.now();
  // The directory first and alone: the patient Bundles' conditional references need it.
  const directory = await postBundle(c, directoryBundle());
  if (directory.status !== 200) throw new Error(`directory Bundle failed: ${directory.status} ${directory.body}`);
  recordBundle(result, -1, directory);
  result.resources += ENTRIES_PER_BUNDLE;
  result.finished.push({ at: (performance.now() - started) / 1000, ms: directory.ms });
  result.bundleLatencies.push(directory.ms);

  const bundles = Math.floor(options.resources / ENTRIES_PER_BUNDLE) - 1;
  let next = 0;
  const worker = async () => {
    while (next < bundles) {
      const b = next++;
      const answer = await postBundle(c, patientBundle(options.seed, b));
      result.bundleLatencies.push(answer.ms);
      if (answer.status !== 200) {
        countFailure(result, answer);
        continue;
      }
      recordBundle(result, b, answer);
      result.resources += ENTRIES_PER_BUNDLE;
      const at = (performance.now() - started) / 1000;
      result.finished.push({ at, ms: answer.ms });
      if (result.finished.length % 50 === 0) {
        process.stderr.write(`\r  ${result.resources} resources, ${(result.resources / at).toFixed(0)}/s   `);
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, worker));
  process.stderr.write('\n');
  result.seconds = (performance.now() - started) / 1000;
  c.agent.destroy();
  return result;
}

/** Resources/s per tenth of the load, in the order the Bundles finished, so a slowdown shows. */
function printDeciles(result: IngestResult): void {
  const rows: (string | number)[][] = [];
  const n = result.finished.length;
  let from = 0;
  let since = 0;
  for (let d = 1; d <= 10; d++) {
    const to = Math.round((d * n) / 10);
    if (to <= from) continue;
    const slice = result.finished.slice(from, to);
    const at = slice[slice.length - 1].at;
    const latency = summarize(slice.map((f) => f.ms));
    rows.push([
      `${(d - 1) * 10}-${d * 10}%`,
      to * ENTRIES_PER_BUNDLE,
      ((slice.length * ENTRIES_PER_BUNDLE) / (at - since)).toFixed(0),
      ms(latency.p50),
      ms(latency.p95),
      ms(latency.max),
    ]);
    from = to;
    since = at;
  }
  printTable(['tenth', 'resources so far', 'resources/s', 'tx p50 ms', 'tx p95 ms', 'tx max ms'], rows);
}

function printIngest(options: Options, result: IngestResult): void {
  const tx = summarize(result.bundleLatencies);
  console.log(
    `\n## Ingest: ${result.resources} resources in ${ENTRIES_PER_BUNDLE}-entry transactions, ${options.clients} clients`,
  );
  console.log(
    `${(result.resources / result.seconds).toFixed(0)} resources/s overall, ${result.seconds.toFixed(1)} s; ` +
      `transactions: ${tx.count}, p50 ${ms(tx.p50)} ms, p95 ${ms(tx.p95)} ms, p99 ${ms(tx.p99)} ms, max ${ms(tx.max)} ms`,
  );
  console.log(`entry answers: ${[...result.entryStatuses].map(([s, k]) => `${s}: ${k}`).join(', ')}`);
  printDeciles(result);
  printFailures('failed transactions', result.failures);
}

function printFailures(title: string, failures: Map<string, number>): void {
  if (!failures.size) return;
  console.log(`${title}:`);
  for (const [text, count] of [...failures].sort((a, b) => b[1] - a[1]).slice(0, 8))
    console.log(`  ${count} × ${text}`);
}

// ---------------------------------------------------------------------------------------------------
// Read/search mix

interface Pick {
  patientId: string;
  mrn: string;
  family: string;
  stored: Stored;
  month: number;
  n: number;
}

type Query = { name: string; path: (p: Pick) => string };

const months = (m: number) => {
  const first = (k: number) => new Date(Date.UTC(2025, 6 + k, 1)).toISOString().slice(0, 10);
  return `date=ge${first(m)}&date=lt${first(m + 1)}`;
};

/** The mix: what the care team's apps, pharmacies and analysts ask of the server. */
const QUERIES: Query[] = [
  { name: 'read', path: (p) => `${p.stored.type}/${p.stored.id}` },
  { name: 'vread', path: (p) => `${p.stored.type}/${p.stored.id}/_history/${p.stored.vid}` },
  {
    name: 'active MedicationRequests + _include Medication',
    path: (p) => `MedicationRequest?patient=${p.patientId}&status=active&_include=MedicationRequest:medication`,
  },
  {
    name: 'MedicationDispense by patient, _sort=-whenhandedover',
    path: (p) => `MedicationDispense?patient=${p.patientId}&_sort=-whenhandedover`,
  },
  {
    name: 'Observation by code and date range',
    path: (p) =>
      `Observation?code=http://loinc.org|${p.n % 2 ? PHQ9 : UDS_CODES[p.n % UDS_CODES.length]}&${months(p.month)}`,
  },
  { name: 'Patient?name=<prefix>', path: (p) => `Patient?name=${p.family.slice(0, 3).toLowerCase()}` },
  { name: 'Patient?identifier=sys|value', path: (p) => `Patient?identifier=${mrnSystem()}|${p.mrn}` },
  {
    name: 'MedicationRequest by status+intent+patient',
    path: (p) => `MedicationRequest?status=active&intent=order&patient=${p.patientId}`,
  },
  { name: 'CarePlan by patient and status', path: (p) => `CarePlan?patient=${p.patientId}&status=active` },
  { name: '$medication-review', path: (p) => `Patient/${p.patientId}/$medication-review?date=${REVIEW_DATE}` },
  {
    name: 'compartment Patient/<id>/MedicationStatement',
    path: (p) => `Patient/${p.patientId}/MedicationStatement?status=not-taken`,
  },
];

interface QueryStats {
  latencies: number[];
  errors: number;
  entries: number;
  firstError?: string;
}

interface MixResult {
  seconds: number;
  stats: Map<string, QueryStats>;
  all: number[];
}

function picker(result: IngestResult, seed: number): (n: number) => Pick {
  const rand = seededRandom(seed + 7);
  const patients = [...result.patients];
  if (!patients.length || !result.samples.length) throw new Error('the load stored no patients to query');
  return (n) => {
    const [index, patientId] = patients[Math.floor(rand() * patients.length)];
    const { mrn, family } = patientIdentity(seed, index);
    const stored = result.samples[Math.floor(rand() * result.samples.length)];
    return { patientId, mrn, family, stored, month: Math.floor(rand() * 12), n };
  };
}

/** Entries of a searchset that matched (not included ones), or 1 for a read. */
function matches(body: string): number {
  const resource = JSON.parse(body) as { resourceType?: string; entry?: BundleEntry[] };
  if (resource.resourceType !== 'Bundle') return 1;
  return (resource.entry ?? []).filter((e) => e.search?.mode !== 'include').length;
}

async function mix(options: Options, base: string, ingestResult: IngestResult): Promise<MixResult> {
  const c = client(base, options.connections);
  const pick = picker(ingestResult, options.seed);
  const stats = new Map<string, QueryStats>(QUERIES.map((q) => [q.name, { latencies: [], errors: 0, entries: 0 }]));
  const all: number[] = [];
  const seconds = await forSeconds(options.connections, options.mixSeconds, async (n) => {
    const query = QUERIES[n % QUERIES.length];
    const answer = await send(c, 'GET', query.path(pick(n)), { timeoutMs: 120_000 });
    const s = stats.get(query.name) as QueryStats;
    s.latencies.push(answer.ms);
    all.push(answer.ms);
    if (answer.status === 200) s.entries += matches(answer.body);
    else {
      s.errors++;
      s.firstError ??= `${answer.status} ${answer.body.replace(/\s+/g, ' ').slice(0, 200)}`;
    }
  });
  c.agent.destroy();
  return { seconds, stats, all };
}

function printMix(options: Options, result: MixResult): void {
  const overall = summarize(result.all);
  const slow = result.all.filter((t) => t > TARGET.slowMs).length;
  console.log(
    `\n## Read/search mix: ${options.connections} connections, ${result.seconds.toFixed(1)} s, right after the load`,
  );
  console.log(
    `${(overall.count / result.seconds).toFixed(1)} requests/s; ${overall.count} requests, ` +
      `p50 ${ms(overall.p50)} ms, p95 ${ms(overall.p95)} ms, p99 ${ms(overall.p99)} ms, max ${ms(overall.max)} ms; ` +
      `${slow} over 1 s`,
  );
  const rows = [...result.stats].map(([name, s]) => {
    const q = summarize(s.latencies);
    const ok = q.count - s.errors;
    return [
      name,
      q.count,
      ms(q.p50),
      ms(q.p95),
      ms(q.p99),
      ms(q.max),
      s.errors,
      ok ? (s.entries / ok).toFixed(1) : '-',
    ];
  });
  printTable(['query', 'count', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'errors', 'matches/answer'], rows);
  for (const [name, s] of result.stats) if (s.firstError) console.log(`first error of ${name}: ${s.firstError}`);
}

// ---------------------------------------------------------------------------------------------------
// Single creates

interface CreateResult {
  seconds: number;
  latencies: number[];
  statuses: Map<number, number>;
  firstError?: string;
}

async function creates(options: Options, base: string, ingestResult: IngestResult): Promise<CreateResult> {
  const c = client(base, options.connections);
  const pick = picker(ingestResult, options.seed + 1);
  const result: CreateResult = { seconds: 0, latencies: [], statuses: new Map() };
  result.seconds = await forSeconds(options.connections, options.createSeconds, async (n) => {
    const body = newPrescription(pick(n).patientId, n);
    const answer = await send(c, 'POST', 'MedicationRequest', { body, timeoutMs: 120_000 });
    result.latencies.push(answer.ms);
    result.statuses.set(answer.status, (result.statuses.get(answer.status) ?? 0) + 1);
    if (answer.status !== 201) result.firstError ??= `${answer.status} ${answer.body.slice(0, 200)}`;
  });
  c.agent.destroy();
  return result;
}

function printCreates(options: Options, result: CreateResult): void {
  const s = summarize(result.latencies);
  console.log(
    `\n## Single creates: POST MedicationRequest, ${options.connections} connections, ${result.seconds.toFixed(1)} s`,
  );
  console.log(
    `${(s.count / result.seconds).toFixed(1)} creates/s; p50 ${ms(s.p50)} ms, p95 ${ms(s.p95)} ms, p99 ${ms(s.p99)} ms, ` +
      `max ${ms(s.max)} ms; p99/p50 ${(s.p99 / s.p50).toFixed(1)}; answers: ${[...result.statuses].map(([k, v]) => `${k}: ${v}`).join(', ')}`,
  );
  if (result.firstError) console.log(`first error: ${result.firstError}`);
}

// ---------------------------------------------------------------------------------------------------
// Memory, targets, the server's log

function printMemory(phases: [string, Map<number, MemoryPeaks>][], pids: { server?: number; engine?: number }): void {
  console.log('\n## Peak RSS (VmRSS sampled every 250 ms; VmHWM is the kernel peak since the process started)');
  const cell = (peaks: Map<number, MemoryPeaks>, pid: number | undefined, field: keyof MemoryPeaks) =>
    pid === undefined ? '-' : mib(peaks.get(pid)?.[field]);
  printTable(
    ['phase', 'server RSS', 'server HWM', 'engine RSS', 'engine HWM'],
    phases.map(([phase, peaks]) => [
      phase,
      cell(peaks, pids.server, 'sampled'),
      cell(peaks, pids.server, 'hwm'),
      cell(peaks, pids.engine, 'sampled'),
      cell(peaks, pids.engine, 'hwm'),
    ]),
  );
}

interface Figures {
  ingest: IngestResult;
  mix: MixResult;
  create: CreateResult;
  serverPeak?: number;
}

function printTargets(f: Figures): void {
  const ingestRate = f.ingest.resources / f.ingest.seconds;
  const mix = summarize(f.mix.all);
  const mixRate = mix.count / f.mix.seconds;
  const slow = f.mix.all.filter((t) => t > TARGET.slowMs).length;
  const create = summarize(f.create.latencies);
  const ratio = create.p99 / create.p50;
  const scale = f.ingest.resources >= TARGET.ingestAt ? '' : ` (measured at ${f.ingest.resources}, target is at 100k)`;
  const rows: [string, string, boolean][] = [
    [
      'ingest ≥ 600 resources/s, 4 clients, 100k',
      `${ingestRate.toFixed(0)} resources/s${scale}`,
      ingestRate >= TARGET.ingestPerSecond,
    ],
    ['mix ≥ 150 requests/s', `${mixRate.toFixed(1)} requests/s`, mixRate >= TARGET.mixPerSecond],
    ['mix p95 < 100 ms', `${ms(mix.p95)} ms`, mix.p95 < TARGET.mixP95],
    ['mix: no request over 1 s', `${slow} over 1 s (max ${ms(mix.max)} ms)`, slow === 0],
    [
      'create p99 < 5 × p50',
      `${ms(create.p99)} / ${ms(create.p50)} ms = ${ratio.toFixed(1)}×`,
      ratio < TARGET.createRatio,
    ],
    [
      'server RSS < 512 MiB throughout',
      f.serverPeak === undefined ? 'not measured (no --server-pid)' : mib(f.serverPeak),
      f.serverPeak !== undefined && f.serverPeak < TARGET.serverRss,
    ],
  ];
  console.log('\n## Targets of issue 10');
  printTable(
    ['target', 'measured', 'met'],
    rows.map(([t, m, ok]) => [t, m, ok ? 'yes' : 'NO']),
  );
}

function printLog(server: SpawnedServer): void {
  const log = summarizeLog(server.logFile);
  console.log(`\n## Server log (${server.logFile})`);
  console.log(
    `${log.lines} lines; ${Object.entries(log.byLevel)
      .map(([l, n]) => `${l}: ${n}`)
      .join(', ')}; ${log.serverErrors} answers 5xx`,
  );
  for (const [message, count] of log.messages) console.log(`  ${count} × ${message}`);
}

// ---------------------------------------------------------------------------------------------------

function printHeader(
  options: Options,
  base: string,
  pids: { server?: number; engine?: number },
  startupMs?: number,
): void {
  const load = loadAverageText();
  console.log(`# meds-fhir scale benchmark, ${new Date().toISOString()}`);
  console.log(
    `server ${base} (pid ${pids.server ?? '?'}, engine pid ${pids.engine ?? '?'})` +
      `${startupMs === undefined ? '' : `, ready in ${startupMs} ms`}; node ${process.version}, ${cpus().length} cores; ` +
      `load average ${load}; ${options.resources} resources, seed ${options.seed}; ` +
      `authorization ${options.spawn ? (options.auth ? 'on (administrator token)' : 'off (AUTH=off)') : 'as the server is configured'}`,
  );
}

const loadAverageText = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/**
 * The load average and the CPU seconds each process used since the last call: on a shared 2-core
 * machine these say how much of the machine the server had, and how much the benchmark client took.
 */
function cpuMeter(pids: { server?: number; engine?: number }): () => string {
  const read = () => ({
    server: pids.server === undefined ? undefined : cpuSeconds(pids.server),
    engine: pids.engine === undefined ? undefined : cpuSeconds(pids.engine),
    client: process.cpuUsage(),
  });
  let last = read();
  return () => {
    const now = read();
    const diff = (a?: number, b?: number) => (a === undefined || b === undefined ? '-' : (a - b).toFixed(1));
    const client = (now.client.user + now.client.system - last.client.user - last.client.system) / 1e6;
    const text =
      `load average ${loadAverageText()}; CPU seconds in this phase: server ${diff(now.server, last.server)}, ` +
      `engine ${diff(now.engine, last.engine)}, benchmark client ${client.toFixed(1)}`;
    last = now;
    return text;
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  // With authorization on, every request carries an administrator's token (system/*.cruds, cleared).
  const secret = options.auth ? randomBytes(32).toString('base64url') : undefined;
  const spawned = options.spawn ? await spawnServer(resolve(__dirname, '..'), options.logLevel, { secret }) : undefined;
  const base = spawned?.base ?? (options.base as string);
  if (secret) useAuthorization(`Bearer ${await adminToken(secret)}`);
  else if (process.env.FHIR_TOKEN) useAuthorization(`Bearer ${process.env.FHIR_TOKEN}`);
  const server = spawned?.pid ?? options.serverPid;
  const engine = options.enginePid ?? (server === undefined ? undefined : childPid(server));
  const pids = { server, engine };
  const sampler = new MemorySampler([server, engine].filter((p): p is number => p !== undefined));
  printHeader(options, base, pids, spawned?.startupMs);
  const loadAverage = cpuMeter(pids);
  try {
    const ingestResult = await ingest(options, base);
    const afterLoad = sampler.mark();
    printIngest(options, ingestResult);
    console.log(loadAverage());
    const mixResult = await mix(options, base, ingestResult);
    const afterMix = sampler.mark();
    printMix(options, mixResult);
    console.log(loadAverage());
    const createResult = await creates(options, base, ingestResult);
    const afterCreates = sampler.mark();
    printCreates(options, createResult);
    console.log(loadAverage());
    const overall = sampler.stop();
    printMemory(
      [
        ['ingest', afterLoad],
        ['mix', afterMix],
        ['creates', afterCreates],
        ['overall', overall],
      ],
      pids,
    );
    // A spawned server's kernel peak lies within the benchmark; a running one's may predate it.
    const peaks = server === undefined ? undefined : overall.get(server);
    const serverPeak = peaks && (spawned ? Math.max(peaks.sampled, peaks.hwm) : peaks.sampled);
    printTargets({ ingest: ingestResult, mix: mixResult, create: createResult, serverPeak });
  } finally {
    sampler.stop();
    if (spawned) {
      await stopServer(spawned);
      printLog(spawned);
    }
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
