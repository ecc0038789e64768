/**
 * $evaluate-measure of shipped Measures (issue 13) through the real Express app: loads N generated
 * patients straight into the collections (bench/search-cohort.ts's loader; per patient a Patient,
 * statin fills, for some opioid and benzodiazepine fills and a Condition, about 11 resources), then
 * evaluates each measure over the whole population over HTTP (asynchronously: kick-off, then polls
 * after each Retry-After) and prints seconds, patients/s and the
 * process's peak RSS while it runs (sampled every 20 ms; server and client share the process).
 * Usage:
 *   npx tsx bench/measure.ts [--patients 10000] [--measures pdc-statins,cob] [--concurrency 8] [--reuse] [--base URL]
 *   (node --expose-gc --import tsx bench/measure.ts ... adds the heap still used after each run, collected)
 * With --base, the same requests go to another FHIR server (its data loaded by other means).
 * MONGODB_URI selects the engine; without it the embedded FerretDB starts with its data under
 * .cache/bench-measure (kept, so --reuse skips the load).
 */
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { MeasureReport, Resource } from '@medplum/fhirtypes';
import pino from 'pino';
import { createServerContext, type RunningContext } from '../src/app-context';
import { loadConfig } from '../src/config';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { createApp } from '../src/http/app';
import { SearchParameterRegistry } from '../src/search';
import { loadCohort, RXNORM } from './search-cohort';
import { seededRandom } from './seeded-random';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const patients = Number(arg('patients', '10000'));
const measures = arg('measures', 'pdc-statins,cob').split(',');
const reuse = args.includes('--reuse');
const externalBase = arg('base', '');
const concurrency = arg('concurrency', '8');
const MIB = 1024 * 1024;

const PRODUCTS = {
  atorvastatin: { code: '259255', display: 'atorvastatin 80 MG Oral Tablet' },
  simvastatin: { code: '198211', display: 'simvastatin 40 MG Oral Tablet' },
  oxycodone: { code: '1049683', display: 'oxycodone hydrochloride 10 MG Oral Tablet' },
  alprazolam: { code: '308048', display: 'alprazolam 0.5 MG Oral Tablet' },
};
const CONDITIONS = [
  { system: 'http://snomed.info/sct', code: '46177005' },
  { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C50.911' },
  { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'I10' },
];
const day = (offset: number) => new Date(Date.UTC(2025, 0, 1) + offset * 86_400_000).toISOString().slice(0, 10);

/** Patient i's resources: deterministic (seeded), so a run over the same N counts the same. */
function measureCohort(i: number): Resource[] {
  const rand = seededRandom(i + 7);
  const id = `mp${i}`;
  const subject = { reference: `Patient/${id}` };
  const out: Resource[] = [
    { resourceType: 'Patient', id, gender: i % 2 ? 'female' : 'male', birthDate: `${1940 + (i % 60)}-03-15` },
  ];
  const fills = (
    drug: keyof typeof PRODUCTS,
    tag: string,
    count: number,
    first: number,
    every: number,
    days: number,
  ) => {
    const rx = `${id}-${tag}-rx`;
    const medicationCodeableConcept = { coding: [{ system: RXNORM, ...PRODUCTS[drug] }] };
    out.push({
      resourceType: 'MedicationRequest',
      id: rx,
      status: 'active',
      intent: 'order',
      subject,
      medicationCodeableConcept,
      requester: { reference: `Practitioner/dr${i % 40}` },
    });
    for (let k = 0; k < count; k++) {
      out.push({
        resourceType: 'MedicationDispense',
        id: `${id}-${tag}-${k}`,
        status: 'completed',
        subject,
        medicationCodeableConcept,
        authorizingPrescription: [{ reference: `MedicationRequest/${rx}` }],
        whenHandedOver: day(first + k * every),
        daysSupply: { value: days, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' },
        quantity: { value: days * 2 },
      });
    }
  };
  fills(
    rand() < 0.5 ? 'atorvastatin' : 'simvastatin',
    'st',
    4 + Math.floor(rand() * 6),
    Math.floor(rand() * 60),
    30 + Math.floor(rand() * 30),
    30,
  );
  if (i % 3 === 0) fills('oxycodone', 'op', 2 + Math.floor(rand() * 3), Math.floor(rand() * 200), 30, 30);
  if (i % 6 === 0) fills('alprazolam', 'bz', 2, Math.floor(rand() * 200), 30, 30);
  if (i % 10 === 0) {
    out.push({ resourceType: 'Condition', id: `${id}-c`, subject, code: { coding: [CONDITIONS[i % 3]] } });
  }
  return out;
}

async function main(): Promise<void> {
  let engine: EmbeddedEngine | undefined;
  let running: RunningContext | undefined;
  let server: ReturnType<ReturnType<typeof createApp>['listen']> | undefined;
  let base = externalBase;
  if (!base) {
    let uri = process.env.MONGODB_URI;
    if (!uri) {
      const dataDir = join(__dirname, '..', '.cache', 'bench-measure');
      mkdirSync(dataDir, { recursive: true });
      engine = await startEmbeddedEngine({ dataDir });
      uri = engine.uri;
    }
    // Authorization off: the evaluation's own cost (the access filter of a system/*.rs token adds a condition per read).
    const config = {
      ...loadConfig({ AUTH: 'off', MEASURE_CONCURRENCY: concurrency, EXPORT_POLL_SECONDS: '1' }),
      databaseName: `bench_measure_${patients}`,
      publicBaseUrl: 'http://bench/fhir',
    };
    running = await createServerContext(config, uri, pino({ level: 'silent' }));
    const db = running.connection.db;
    if (!reuse || (await db.collection('Patient').estimatedDocumentCount()) !== patients) {
      for (const c of await db.listCollections().toArray()) {
        if (
          !c.name.startsWith('_') &&
          !['Measure', 'ValueSet', 'ViewDefinition', 'OperationDefinition'].includes(c.name)
        ) {
          await db.collection(c.name).deleteMany({});
        }
      }
      const started = Date.now();
      await loadCohort(
        db,
        new SearchParameterRegistry(),
        patients,
        (done) => process.stdout.write(`\rloaded ${done} patients`),
        {
          generate: measureCohort,
        },
      );
      console.log(`\nload: ${patients} patients in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    server = createApp(running.context).listen(0, '127.0.0.1');
    await new Promise((resolve) => server?.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  }
  console.log(
    `dataset: ${patients} patients; engine ${engine ? 'embedded FerretDB 1.24 on SQLite' : (process.env.MONGODB_URI ?? base)}; ` +
      `node ${process.version}, ${cpus().length} cores (shared)`,
  );

  const results: string[][] = [];
  for (const measure of measures) {
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    let peakHeap = 0;
    const sampler = setInterval(() => {
      const usage = process.memoryUsage();
      peak = Math.max(peak, usage.rss);
      peakHeap = Math.max(peakHeap, usage.heapUsed);
    }, 20);
    const started = performance.now();
    // A population this size goes asynchronous (a synchronous answer would outlast HTTP client timeouts).
    const kickOff = await fetch(
      `${base}/Measure/${measure}/$evaluate-measure?periodStart=2025-01-01&periodEnd=2025-12-31`,
      {
        headers: { prefer: 'respond-async' },
      },
    );
    const status = kickOff.headers.get('content-location');
    if (kickOff.status !== 202 || !status) throw new Error(`${measure}: ${kickOff.status} ${await kickOff.text()}`);
    let report: MeasureReport | undefined;
    let retryAfter = 1;
    while (!report) {
      // As a client must: the next poll after the Retry-After the last answer gave (sooner is a 429).
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
      const poll = await fetch(status.replace('http://bench/fhir', base));
      if (poll.status === 200) report = (await poll.json()) as MeasureReport;
      else if (poll.status !== 202) throw new Error(`${measure}: ${poll.status} ${await poll.text()}`);
      else {
        await poll.arrayBuffer();
        retryAfter = Number(poll.headers.get('retry-after') ?? 1);
        process.stdout.write(`\r${measure}: ${poll.headers.get('x-progress')}   `);
      }
    }
    process.stdout.write('\n');
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    // What is still held once the garbage is collected (with --expose-gc): flat whatever N is when streaming.
    global.gc?.();
    const heapAfter = process.memoryUsage().heapUsed;
    const count = (code: string) =>
      String(report.group?.[0].population?.find((p) => p.code?.coding?.[0]?.code === code)?.count ?? 0);
    results.push([
      measure,
      String(patients),
      seconds.toFixed(1),
      Math.round(patients / seconds).toString(),
      `${count('initial-population')}/${count('denominator-exclusion')}/${count('numerator')}`,
      (before / MIB).toFixed(0),
      (peak / MIB).toFixed(0),
      (peakHeap / MIB).toFixed(0),
      global.gc ? (heapAfter / MIB).toFixed(0) : '-',
    ]);
  }
  const header = [
    'measure',
    'patients',
    'seconds',
    'patients/s',
    'in/excl/num',
    'RSS before MiB',
    'peak RSS MiB',
    'peak heap MiB',
    'heap after GC MiB',
  ];
  const widths = header.map((h, c) => Math.max(h.length, ...results.map((r) => r[c].length)));
  for (const row of [header, ...results]) console.log(row.map((cell, c) => cell.padEnd(widths[c])).join('  '));

  if (server) await new Promise((resolve) => server?.close(resolve));
  await running?.close();
  await engine?.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
