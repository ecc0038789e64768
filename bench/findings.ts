/**
 * Standing findings (issue 12), in one run, two server contexts on one engine (separate databases):
 * FINDINGS=off and FINDINGS=on (test clock at the cohort's review date).
 *   1. ingest: the scale cohort's 100-entry transaction Bundles (2 patients each, conditional creates)
 *      from --clients concurrent clients, alternating rounds between the two servers so that both see
 *      the same machine; "on" is timed to the last answer and to an empty findings queue;
 *   2. write to finding: a patient's sync (the late-refill scenario, 31 resources) until its late-refill
 *      DetectedIssue is stored, then a new fill until it is closed (p50/p95 over --samples);
 *   3. the daily sweep: the clock moved a day, until every patient with active medications is
 *      evaluated again; its duration scaled to 10,000 patients (linear: one evaluation per patient).
 * Usage: npx tsx bench/findings.ts [--bundles 40] [--clients 2] [--samples 20] [--delay-ms 200]
 * (--delay-ms: the "on" server's FINDINGS_DELAY_MS; the default is the server's own default)
 * MONGODB_URI selects the engine; without it the embedded FerretDB starts under .cache/bench-findings.
 */
import type { Bundle, DetectedIssue, MedicationDispense, Resource } from '@medplum/fhirtypes';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import { createServerContext, type RunningContext } from '../src/app-context';
import { loadConfig } from '../src/config';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { createApp } from '../src/http/app';
import { FINDING_KEY_SYSTEM } from '../src/modules/findings/model';
import { directoryBundle, patientBundle, REVIEW_DATE } from './scale-cohort';
import { client, ms, percentile, printTable, send, type Client } from './scale-http';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const bundles = arg('bundles', 40);
const clients = arg('clients', 2);
const samples = arg('samples', 20);
const delayMs = args.includes('--delay-ms') ? arg('delay-ms', 0) : undefined;
const SEED = 12;
const TIMEOUT = 120_000;

interface Side {
  name: string;
  running: RunningContext;
  server: Server;
  http: Client;
}

async function startSide(name: string, uri: string, findings: boolean): Promise<Side> {
  const base = loadConfig({ AUTH: 'off' });
  const config = {
    ...base,
    databaseName: `bench_findings_${name}`,
    publicBaseUrl: 'http://bench/fhir',
    serverId: `bench-${name}`,
    findings: {
      ...base.findings,
      enabled: findings,
      clock: 'test' as const,
      delayMs: delayMs ?? base.findings.delayMs,
    },
  };
  // Dropped before the server starts (its workers and sweep touch the database at once).
  const admin = await MongoClient.connect(uri);
  await admin.db(config.databaseName).dropDatabase();
  await admin.close();
  const fresh = await createServerContext(config, uri, pino({ level: 'warn' }));
  const server = createApp(fresh.context).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const port = (server.address() as AddressInfo).port;
  return { name, running: fresh, server, http: client(`http://127.0.0.1:${port}/fhir`, clients + 2) };
}

async function post(side: Side, path: string, body?: unknown): Promise<string> {
  const answer = await send(side.http, 'POST', path, { body, timeoutMs: TIMEOUT });
  if (answer.status >= 300) throw new Error(`${side.name} POST ${path}: ${answer.status} ${answer.body.slice(0, 500)}`);
  return answer.body;
}

async function get<T>(side: Side, path: string): Promise<T> {
  const answer = await send(side.http, 'GET', path, { timeoutMs: TIMEOUT });
  if (answer.status !== 200) throw new Error(`${side.name} GET ${path}: ${answer.status} ${answer.body.slice(0, 500)}`);
  return JSON.parse(answer.body) as T;
}

async function queueEmpty(side: Side): Promise<void> {
  const queue = side.running.findings?.queue;
  while (queue && (await queue.size()) > 0) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Sends bundles [from, to) from `clients` concurrent clients; answers the wall time in ms. */
async function ingest(side: Side, from: number, to: number): Promise<number> {
  const started = performance.now();
  let next = from;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < to) await post(side, '', patientBundle(SEED, next++));
    }),
  );
  return performance.now() - started;
}

const lateRefill = (id: string): Resource[] =>
  JSON.parse(
    readFileSync(join(__dirname, '..', 'test', 'fixtures', 'checks', 'scenarios', 'late-refill.resources.json'), 'utf8')
      .split('late-refill')
      .join(id),
  ) as Resource[];

async function lateRefillIssue(side: Side, patient: string): Promise<DetectedIssue | undefined> {
  // The key's own `|` are escaped in a token search (R4 search, "Escaping Search Parameters").
  const key = encodeURIComponent(`${FINDING_KEY_SYSTEM}|${patient}\\|late-refill\\|statins`);
  const bundle = await get<Bundle>(side, `DetectedIssue?identifier=${key}`);
  return bundle.entry?.[0]?.resource as DetectedIssue | undefined;
}

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    const dataDir = join(__dirname, '..', '.cache', 'bench-findings');
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    engine = await startEmbeddedEngine({ dataDir });
    uri = engine.uri;
  }
  const off = await startSide('off', uri, false);
  const on = await startSide('on', uri, true);
  await post(on, `$test-clock?date=${REVIEW_DATE}`);
  await queueEmpty(on);
  for (const side of [off, on]) await post(side, '', directoryBundle());

  // 1. Ingest, alternating rounds; the first round of each is a warm-up and not counted.
  const round = Math.max(2, Math.ceil(bundles / 8));
  const times = { off: 0, on: 0, onDrained: 0 };
  let sent = 0;
  await ingest(off, 0, round);
  await ingest(on, 0, round);
  await queueEmpty(on);
  for (let from = round; from < round + bundles; from += round) {
    const to = Math.min(round + bundles, from + round);
    const order = (from / round) % 2 === 0 ? [off, on] : [on, off];
    for (const side of order) {
      const t = await ingest(side, from, to);
      if (side === off) times.off += t;
      else {
        times.on += t;
        const drainStarted = performance.now();
        await queueEmpty(on);
        times.onDrained += t + (performance.now() - drainStarted);
      }
    }
    sent += to - from;
  }
  const resources = sent * 100;
  const perSecond = (t: number) => (resources / (t / 1000)).toFixed(0);
  console.log(
    `ingest: ${sent} Bundles of 100 entries (${sent * 2} patients) per server after ${round} warm-up Bundles, ` +
      `${clients} clients; engine ${engine ? 'embedded FerretDB 1.24 (SQLite)' : uri}; node ${process.version}, ${cpus().length} cores (shared)`,
  );
  printTable(
    ['FINDINGS', 'wall s', 'resources/s', 'cost'],
    [
      ['off', (times.off / 1000).toFixed(1), perSecond(times.off), '-'],
      [
        'on (to last answer)',
        (times.on / 1000).toFixed(1),
        perSecond(times.on),
        `${((times.on / times.off - 1) * 100).toFixed(1)}%`,
      ],
      [
        'on (to findings current)',
        (times.onDrained / 1000).toFixed(1),
        perSecond(times.onDrained),
        `${((times.onDrained / times.off - 1) * 100).toFixed(1)}%`,
      ],
    ],
  );

  // 2. Write to finding.
  const opened: number[] = [];
  const closed: number[] = [];
  for (let k = 0; k < samples; k++) {
    const patient = `bench-late-${k}`;
    const resources = lateRefill(patient);
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: resources.map((resource) => ({
        resource,
        request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` },
      })),
    };
    await post(on, '', bundle);
    let t = performance.now();
    while (!(await lateRefillIssue(on, patient))) await new Promise((resolve) => setTimeout(resolve, 5));
    opened.push(performance.now() - t);
    const fill = {
      ...(resources.find((r) => r.id === `${patient}-statin-11`) as MedicationDispense),
      id: `${patient}-statin-12`,
      whenHandedOver: REVIEW_DATE,
    };
    const put = await send(on.http, 'PUT', `MedicationDispense/${fill.id}`, { body: fill, timeoutMs: TIMEOUT });
    if (put.status !== 201) throw new Error(`fill: ${put.status} ${put.body}`);
    t = performance.now();
    // R4 binds DetectedIssue.status to ObservationStatus; @medplum/fhirtypes has R5's codes.
    while (((await lateRefillIssue(on, patient))?.status as string | undefined) !== 'cancelled')
      await new Promise((resolve) => setTimeout(resolve, 5));
    closed.push(performance.now() - t);
  }
  opened.sort((a, b) => a - b);
  closed.sort((a, b) => a - b);
  console.log(
    `\nwrite to finding (${samples} samples, FINDINGS_DELAY_MS ${on.running.context.config.findings.delayMs}, polled every 5 ms):`,
  );
  printTable(
    ['write', 'p50 ms', 'p95 ms'],
    [
      [
        'sync of a patient (31 resources) to its late refill opened',
        ms(percentile(opened, 50)),
        ms(percentile(opened, 95)),
      ],
      ['a new fill to the late refill closed', ms(percentile(closed, 50)), ms(percentile(closed, 95))],
    ],
  );

  // 3. The daily sweep.
  await queueEmpty(on);
  const worker = on.running.findings?.worker;
  const before = worker?.evaluations ?? 0;
  const started = performance.now();
  await post(on, `$test-clock?date=2026-07-01`);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await queueEmpty(on);
  const sweepMs = performance.now() - started;
  const evaluated = (worker?.evaluations ?? 0) - before;
  console.log(`\ndaily sweep (${on.running.context.config.findings.workers} workers in one process):`);
  printTable(
    ['patients evaluated', 'sweep s', 'ms per patient', 'scaled to 10,000 patients'],
    [[evaluated, (sweepMs / 1000).toFixed(1), ms(sweepMs / evaluated), `${((sweepMs / evaluated) * 10).toFixed(0)} s`]],
  );

  for (const side of [off, on]) {
    await new Promise((resolve) => side.server.close(resolve));
    side.http.agent.destroy();
    await side.running.connection.db.dropDatabase();
    await side.running.close();
  }
  await engine?.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
