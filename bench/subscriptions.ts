/**
 * Subscriptions (issue 12): how long a write takes to reach a rest-hook receiver as a notification,
 * and what active subscriptions cost the write path, in one run. A receiver on 127.0.0.1 records the
 * arrival of each focus; the writes are MedicationDispense creates over HTTP.
 *   1. ingest with no Subscription at all (`none`);
 *   2. latency: one full-resource subscription, sequential writes, write start → notification arrival;
 *   3. ingest with N active subscriptions on the MedicationDispense topic, all receiving every write
 *      (the workers deliver while the writes go on), then the time until every notification arrived;
 *   4. (in process) the same with this process's workers stopped: what the outbox costs the commit.
 * The workers share the process and the database engine with the writes, so 3 includes their work.
 *
 *   npx tsx bench/subscriptions.ts [--writes 300] [--latency 100] [--subscriptions 10] [--clients 4]
 *     [--base http://host:port/fhir]   (a running server: FHIR_TOKEN for its token; default in process)
 */
import type { Bundle } from '@medplum/fhirtypes';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createServerContext, type RunningContext } from '../src/app-context';
import { loadConfig } from '../src/config';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { createApp } from '../src/http/app';
import { ms, printTable } from './scale-http';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}
const baseArg = process.argv.includes('--base') ? process.argv[process.argv.indexOf('--base') + 1] : undefined;
const WRITES = option('writes', 300);
const LATENCY_WRITES = option('latency', 100);
const SUBSCRIPTIONS = option('subscriptions', 10);
const CLIENTS = option('clients', 4);
const B = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const TOPIC = 'https://meds-fhir.org/fhir/SubscriptionTopic/MedicationDispense';

const percentile = (sorted: number[], p: number) =>
  sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))];

/** Arrival time of each focus per receiver path. */
const arrivals = new Map<string, Map<string, number>>();

function startReceiver(): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      const bundle = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Bundle;
      const seen = arrivals.get(req.url ?? '') ?? new Map<string, number>();
      arrivals.set(req.url ?? '', seen);
      for (const entry of bundle.entry?.slice(1) ?? [])
        if (entry.fullUrl && !seen.has(entry.fullUrl)) seen.set(entry.fullUrl, at);
      res.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let running: RunningContext | undefined;
  let httpServer: Server | undefined;
  let dataDir: string | undefined;
  let base = baseArg;
  const headers: Record<string, string> = { 'Content-Type': 'application/fhir+json', Prefer: 'return=minimal' };
  if (process.env.FHIR_TOKEN) headers.Authorization = `Bearer ${process.env.FHIR_TOKEN}`;
  if (!base) {
    dataDir = mkdtempSync(join(tmpdir(), 'meds-fhir-subscriptions-bench-'));
    engine = await startEmbeddedEngine({ dataDir });
    // A port known before the context is made, so the links the server writes are the ones it serves.
    const port = await freePort();
    base = `http://127.0.0.1:${port}/fhir`;
    const config = { ...loadConfig({ AUTH: 'off' }), databaseName: 'subscriptions_bench', publicBaseUrl: base };
    running = await createServerContext(config, engine.uri, pino({ level: 'silent' }));
    const app = createApp(running.context);
    httpServer = await new Promise<Server>((resolve) => {
      const s = app.listen(port, '127.0.0.1', () => resolve(s));
    });
  }
  const receiver = await startReceiver();
  const post = async (type: string, body: unknown) => {
    const response = await fetch(`${base}/${type}`, { method: 'POST', headers, body: JSON.stringify(body) });
    if (response.status !== 201) throw new Error(`POST ${type}: ${response.status} ${await response.text()}`);
    return (response.headers.get('location') ?? '').replace(/\/_history\/.*$/, '');
  };
  const dispense = (patient: string, n: number) => ({
    resourceType: 'MedicationDispense',
    status: 'completed',
    medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '617312' }] },
    subject: { reference: `Patient/${patient}` },
    whenHandedOver: '2026-11-01',
    note: [{ text: `fill ${n}` }],
  });
  const ingest = async (label: string): Promise<{ perSecond: number; locations: string[] }> => {
    const locations: string[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < WRITES) {
          const n = next++;
          locations.push(await post('MedicationDispense', dispense(`ingest-${n % 50}`, n)));
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(`${label}: ${WRITES} writes in ${seconds.toFixed(1)} s`);
    return { perSecond: WRITES / seconds, locations };
  };
  const subscribe = async (path: string, content: string, filters: string[]) => {
    const location = await post('Subscription', {
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'bench',
      criteria: TOPIC,
      ...(filters.length
        ? { _criteria: { extension: filters.map((f) => ({ url: `${B}/backport-filter-criteria`, valueString: f })) } }
        : {}),
      channel: {
        type: 'rest-hook',
        endpoint: `http://127.0.0.1:${receiver.port}${path}`,
        payload: 'application/fhir+json',
        _payload: { extension: [{ url: `${B}/backport-payload-content`, valueCode: content }] },
      },
    });
    for (;;) {
      const read = (await (await fetch(location, { headers })).json()) as { status?: string };
      if (read.status === 'active') return;
      if (read.status === 'error') throw new Error(`${location} went to error`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const waitFor = async (path: string, urls: string[]) => {
    const started = performance.now();
    for (;;) {
      const seen = arrivals.get(path);
      if (seen && urls.every((u) => seen.has(u))) return performance.now() - started;
      if (performance.now() - started > 600_000) throw new Error(`notifications for ${path} did not all arrive`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  // Warm-up (definitions, indexes, connections), outside every figure.
  for (let i = 0; i < 20; i++) await post('MedicationDispense', dispense('warm', i));
  const none = await ingest('ingest, no subscriptions');

  await subscribe('/latency', 'full-resource', ['patient=Patient/latency']);
  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_WRITES; i++) {
    const started = performance.now();
    const location = await post('MedicationDispense', dispense('latency', i));
    const target = location;
    while (!arrivals.get('/latency')?.has(target)) await new Promise((r) => setImmediate(r));
    latencies.push((arrivals.get('/latency')?.get(target) as number) - started);
  }
  latencies.sort((a, b) => a - b);

  for (let s = 0; s < SUBSCRIPTIONS; s++) await subscribe(`/ingest-${s}`, 'id-only', []);
  const active = await ingest(`ingest, ${SUBSCRIPTIONS} active subscriptions`);
  const expected = active.locations;
  let drain = 0;
  for (let s = 0; s < SUBSCRIPTIONS; s++) drain = Math.max(drain, await waitFor(`/ingest-${s}`, expected));

  // The write path alone: the same subscriptions, this process's workers stopped (in process only).
  let writePathOnly: number | undefined;
  if (running) {
    await running.subscriptions.stop();
    writePathOnly = (await ingest(`ingest, ${SUBSCRIPTIONS} active subscriptions, workers stopped`)).perSecond;
  }
  console.log(
    `\nsubscriptions benchmark: ${WRITES} writes per ingest run, ${CLIENTS} clients, load ${loadavg()[0].toFixed(2)}`,
  );
  printTable(
    ['measure', 'value'],
    [
      ['write → notification p50 (ms)', ms(percentile(latencies, 50))],
      ['write → notification p95 (ms)', ms(percentile(latencies, 95))],
      ['ingest, no subscriptions (writes/s)', none.perSecond.toFixed(1)],
      [`ingest, ${SUBSCRIPTIONS} active subscriptions (writes/s)`, active.perSecond.toFixed(1)],
      ['cost of the subscriptions on ingest (%)', ((1 - active.perSecond / none.perSecond) * 100).toFixed(1)],
      ...(writePathOnly === undefined
        ? []
        : [
            [`ingest, ${SUBSCRIPTIONS} active, workers stopped: write path only (writes/s)`, writePathOnly.toFixed(1)],
            ['cost of the outbox on the write path (%)', ((1 - writePathOnly / none.perSecond) * 100).toFixed(1)],
          ]),
      [`notifications delivered after the ingest (${SUBSCRIPTIONS} × ${WRITES})`, 'all'],
      ['time from the last write until all had arrived (ms)', ms(drain)],
    ],
  );
  receiver.server.close();
  httpServer?.close();
  await running?.close();
  await engine?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
