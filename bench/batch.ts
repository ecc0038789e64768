/**
 * Batch Bundles as an EHR's sync sends them (issue 10's commits, issue 11's slow batches): 100-entry
 * batch Bundles of conditional updates by business identifier (`PUT Type?identifier=sys|value`), the
 * scale cohort's resources pointing at patients stored beforehand. Two server contexts on one engine
 * (separate databases), in alternating rounds so that both see the same machine; the first round of
 * each is a warm-up and not counted. By default they are BATCH_CONCURRENCY 1 (one entry after
 * another) and --concurrency; with --commit-groups-ab both run --concurrency, with COMMIT_GROUPS 0
 * (every commit alone) and 2 (the default: commits that arrive meanwhile go together).
 * Usage: npx tsx bench/batch.ts [--bundles 20] [--concurrency 8] [--clients 1] [--commit-groups-ab]
 * MONGODB_URI selects the engine; without it the embedded FerretDB starts under .cache/bench-batch.
 */
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { mkdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import { createServerContext, type RunningContext } from '../src/app-context';
import { loadConfig } from '../src/config';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { createApp } from '../src/http/app';
import { directoryBundle, patientEntries } from './scale-cohort';
import { client, ms, percentile, printTable, send, type Client } from './scale-http';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const bundles = arg('bundles', 20);
const concurrency = arg('concurrency', 8);
const clients = arg('clients', 1);
const SEED = 21;
const TIMEOUT = 300_000;

interface Side {
  name: string;
  running: RunningContext;
  server: Server;
  http: Client;
  latencies: number[];
  wallMs: number;
  /** `Type?identifier=…` of the directory's entries to the `Type/id` each was stored as. */
  directory: Map<string, string>;
}

async function startSide(name: string, uri: string, batchConcurrency: number, commitGroups: number): Promise<Side> {
  const base = loadConfig({ AUTH: 'off' });
  const config = {
    ...base,
    databaseName: `bench_batch_${name}`,
    publicBaseUrl: 'http://bench/fhir',
    serverId: `bench-batch-${name}`,
    batchConcurrency,
    commitGroups,
    findings: { ...base.findings, enabled: false },
  };
  const admin = await MongoClient.connect(uri);
  await admin.db(config.databaseName).dropDatabase();
  await admin.close();
  const running = await createServerContext(config, uri, pino({ level: 'warn' }));
  const server = createApp(running.context).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    running,
    server,
    http: client(`http://127.0.0.1:${port}/fhir`, clients + 1),
    latencies: [],
    wallMs: 0,
    directory: new Map(),
  };
}

async function post(side: Side, body: Bundle): Promise<Bundle> {
  const answer = await send(side.http, 'POST', '', { body, timeoutMs: TIMEOUT });
  if (answer.status !== 200) throw new Error(`${side.name}: ${answer.status} ${answer.body.slice(0, 500)}`);
  return JSON.parse(answer.body) as Bundle;
}

/**
 * The cohort's references that only a transaction resolves (conditional ones to the directory, urn:uuid
 * ones between a patient's entries) made literal through `literal`.
 */
function standalone(resource: Resource, literal: Map<string, string>): Resource {
  return JSON.parse(JSON.stringify(resource), (key, value: unknown) => {
    if (Array.isArray(value)) {
      const kept = value.filter((v) => v !== undefined);
      return kept.length ? kept : undefined;
    }
    if (value && typeof value === 'object' && !Object.keys(value).length) return undefined;
    const ref = (value as { reference?: unknown } | null)?.reference;
    if (typeof ref !== 'string') return value;
    if (literal.has(ref)) return { ...(value as object), reference: literal.get(ref) };
    return ref.startsWith('urn:') || ref.includes('?') ? undefined : value;
  }) as Resource;
}

/** Batch `b`: two patients' 49 resources each (their Patients are stored first). */
function batchBundle(b: number, directory: Map<string, string>): Bundle {
  const entries: BundleEntry[] = [];
  for (let p = 0; p < 2; p++) {
    const i = b * 2 + p;
    const [patient, ...rest] = patientEntries(SEED, i);
    // The entries other entries point at (prescriptions) get ids of their own, written by instance PUT.
    const literal = new Map(directory);
    literal.set(patient.fullUrl as string, `Patient/batch-${i}`);
    rest.forEach((entry, n) => {
      if (entry.fullUrl) literal.set(entry.fullUrl, `${entry.resource?.resourceType}/batch-${i}-${n}`);
    });
    for (const entry of rest) {
      const resource = standalone(entry.resource as Resource, literal) as Resource & {
        identifier?: { system?: string; value?: string }[];
      };
      const target = entry.fullUrl ? literal.get(entry.fullUrl) : undefined;
      const id = resource.identifier?.[0];
      if (target) resource.id = target.split('/')[1];
      entries.push({
        resource,
        request: { method: 'PUT', url: target ?? `${resource.resourceType}?identifier=${id?.system}|${id?.value}` },
      });
    }
  }
  return { resourceType: 'Bundle', type: 'batch', entry: entries };
}

function patientsBundle(from: number, to: number): Bundle {
  const entry: BundleEntry[] = [];
  for (let i = from; i < to; i++) {
    const patient = patientEntries(SEED, i)[0].resource as Resource;
    entry.push({ resource: { ...patient, id: `batch-${i}` }, request: { method: 'PUT', url: `Patient/batch-${i}` } });
  }
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

async function round(side: Side, from: number, to: number, counted: boolean): Promise<void> {
  const directory = side.directory;
  const started = performance.now();
  let next = from;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < to) {
        const b = next++;
        const t = performance.now();
        const answered = await post(side, batchBundle(b, directory));
        const failed = (answered.entry ?? []).filter((e) => !/^20[01]/.test(e.response?.status ?? ''));
        if (failed.length) throw new Error(`${side.name}: ${JSON.stringify(failed[0]).slice(0, 500)}`);
        if (counted) side.latencies.push(performance.now() - t);
      }
    }),
  );
  if (counted) side.wallMs += performance.now() - started;
}

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    const dataDir = join(__dirname, '..', '.cache', 'bench-batch');
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    engine = await startEmbeddedEngine({ dataDir, binary: process.env.ENGINE_BINARY || undefined });
    uri = engine.uri;
  }
  const groupsAb = args.includes('--commit-groups-ab');
  const one = groupsAb ? await startSide('groups0', uri, concurrency, 0) : await startSide('sequential', uri, 1, 2);
  const many = await startSide(`concurrency${concurrency}`, uri, concurrency, 2);
  const warmUp = Math.max(1, Math.ceil(bundles / 10));
  const total = warmUp + bundles;
  for (const side of [one, many]) {
    const bundle = directoryBundle();
    const stored = await post(side, bundle);
    (bundle.entry ?? []).forEach((entry, i) => {
      const location = stored.entry?.[i]?.response?.location?.split('/_history')[0];
      if (location) side.directory.set(`${entry.request?.url}?${entry.request?.ifNoneExist}`, location);
    });
    for (let i = 0; i < total * 2; i += 100) await post(side, patientsBundle(i, Math.min(total * 2, i + 100)));
    await round(side, 0, warmUp, false);
  }
  const step = Math.max(1, Math.ceil(bundles / 4));
  for (let from = warmUp; from < total; from += step) {
    const to = Math.min(total, from + step);
    const order = ((from - warmUp) / step) % 2 === 0 ? [one, many] : [many, one];
    for (const side of order) await round(side, from, to, true);
  }
  const resources = bundles * 98;
  console.log(
    `batch: ${bundles} Bundles of 98 updates (4 prescriptions by id, the rest by identifier) per server after ${warmUp} warm-up Bundles, ${clients} ` +
      `client(s); engine ${engine ? 'embedded FerretDB 1.24 (SQLite)' : uri}; node ${process.version}, ${cpus().length} cores (shared)`,
  );
  const rows = [one, many].map((side) => {
    const sorted = [...side.latencies].sort((a, b) => a - b);
    return [
      side.running.context.config.batchConcurrency,
      side.running.context.config.commitGroups,
      (side.wallMs / 1000).toFixed(1),
      (resources / (side.wallMs / 1000)).toFixed(0),
      ms(percentile(sorted, 50)),
      ms(percentile(sorted, 95)),
    ];
  });
  printTable(['BATCH_CONCURRENCY', 'COMMIT_GROUPS', 'wall s', 'resources/s', 'Bundle p50 ms', 'Bundle p95 ms'], rows);
  console.log(`ratio: ${(one.wallMs / many.wallMs).toFixed(2)}× the resources/s of the first row`);

  for (const side of [one, many]) {
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
