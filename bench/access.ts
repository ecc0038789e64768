/**
 * What access control costs a practitioner with thousands of patients (issue 11): loads N patients
 * (Patient, 2 MedicationRequests, 2 MedicationDispenses, 1 Observation and a CareTeam each) straight
 * into the collections, documents built by ResourceStore.stage as a write builds them; a practitioner
 * is on the care teams of --team of them, another on 20. Then the same searches and reads run over
 * HTTP through the real app as an administrator (system/*.rs, cleared), as each practitioner
 * (user/*.rs) and as a patient (patient/*.rs), and the p50/p95 of each is printed with its ratio to
 * the administrator's. Usage:
 *   npx tsx bench/access.ts [--patients 3000] [--team 2000] [--runs 30] [--reuse]
 * The embedded FerretDB keeps its data under .benchdata/access (--reuse skips the load).
 */
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { SignJWT } from 'jose';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { createServerContext } from '../src/app-context';
import { loadConfig } from '../src/config';
import { startEmbeddedEngine } from '../src/db/embedded-engine';
import { createApp } from '../src/http/app';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const patients = arg('patients', 3000);
const team = arg('team', 2000);
const runs = arg('runs', 30);
const reuse = args.includes('--reuse');
const SECRET = 'bench-access-secret-of-thirty-two-characters';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

function patientResources(i: number): Resource[] {
  const p = `ap-${i}`;
  const subject = { reference: `Patient/${p}` };
  const members = [{ member: { reference: `Practitioner/${i < team ? 'big' : 'none'}` } }];
  if (i < 20) members.push({ member: { reference: 'Practitioner/small' } });
  const rx = (n: number): Resource => ({
    resourceType: 'MedicationRequest',
    id: `${p}-rx${n}`,
    status: n === 0 ? 'active' : 'completed',
    intent: 'order',
    subject,
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: n === 0 ? '1010600' : '83367' }] },
    authoredOn: `2026-0${1 + (i % 9)}-1${n}`,
  });
  const fill = (n: number): Resource => ({
    resourceType: 'MedicationDispense',
    id: `${p}-fill${n}`,
    status: 'completed',
    subject,
    medicationCodeableConcept: { coding: [{ system: RXNORM, code: '1010600' }] },
    whenHandedOver: `2026-${String(1 + ((i + n) % 11)).padStart(2, '0')}-${String(1 + (i % 27)).padStart(2, '0')}`,
    daysSupply: { value: 30, unit: 'day', system: 'http://unitsofmeasure.org', code: 'd' },
  });
  return [
    {
      resourceType: 'Patient',
      id: p,
      name: [{ family: `Family${i % 500}`, given: [`Given${i}`] }],
      birthDate: '1980-01-01',
    },
    rx(0),
    rx(1),
    fill(0),
    fill(1),
    {
      resourceType: 'Observation',
      id: `${p}-uds`,
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '19295-5' }] },
      subject,
      effectiveDateTime: `2026-0${1 + (i % 9)}-05`,
    },
    { resourceType: 'CareTeam', id: `${p}-team`, status: 'active', subject, participant: members },
  ] as Resource[];
}

async function token(claims: Record<string, unknown>): Promise<string> {
  return `Bearer ${await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('2h').sign(new TextEncoder().encode(SECRET))}`;
}

async function main(): Promise<void> {
  const dataDir = join(__dirname, '..', '.benchdata', 'access');
  mkdirSync(dataDir, { recursive: true });
  const engine = await startEmbeddedEngine({ dataDir, binary: process.env.ENGINE_BINARY || undefined });
  const config = {
    ...loadConfig({}),
    databaseName: `bench_access_${patients}`,
    publicBaseUrl: 'http://bench/fhir',
    auth: { mode: 'hs256' as const, hs256Secret: SECRET, accessTokenSeconds: 300 },
  };
  const running = await createServerContext(config, engine.uri, pino({ level: 'silent' }));
  const { store } = running.context;
  const db = running.connection.db;
  if (!reuse || (await db.collection('Patient').estimatedDocumentCount()) !== patients) {
    for (const c of await db.listCollections().toArray())
      if (!c.name.startsWith('_')) await db.collection(c.name).deleteMany({});
    const started = Date.now();
    for (let from = 0; from < patients; from += 100) {
      const byType = new Map<string, Resource[]>();
      for (let i = from; i < Math.min(patients, from + 100); i++) {
        for (const r of patientResources(i)) byType.set(r.resourceType, [...(byType.get(r.resourceType) ?? []), r]);
      }
      for (const [type, resources] of byType) {
        const staged = store.stage(
          resources.map((r) => ({ type, id: r.id as string, method: 'PUT', previous: null, resource: r })),
        );
        await db.collection(type).insertMany(staged.map((s) => s.next) as never[]);
      }
      process.stdout.write(`\rloaded ${Math.min(patients, from + 100)} patients`);
    }
    console.log(` in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  const server = createApp(running.context).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  const personas: [string, string][] = [
    ['administrator (system/*.rs, cleared)', await token({ sub: 'admin', scope: 'system/*.rs', clearance: ['*'] })],
    [
      `practitioner on ${team} care teams`,
      await token({ sub: 'big', scope: 'user/*.rs', fhirUser: 'Practitioner/big' }),
    ],
    [
      'practitioner on 20 care teams',
      await token({ sub: 'small', scope: 'user/*.rs', fhirUser: 'Practitioner/small' }),
    ],
    ['patient (patient/*.rs)', await token({ sub: 'p7', scope: 'patient/*.rs', patient: 'ap-7' })],
  ];
  const queries: [string, (i: number) => string][] = [
    ['MedicationRequest?status=active', () => 'MedicationRequest?status=active&_count=20'],
    ['MedicationRequest?subject=<one of theirs>', (i) => `MedicationRequest?subject=Patient/ap-${i % 20}`],
    ['MedicationDispense?_sort=-whenhandedover', () => 'MedicationDispense?_sort=-whenhandedover&_count=20'],
    ['Patient?name=<prefix>', (i) => `Patient?name=Family${(i * 37) % 500}&_count=20`],
    ['Observation?code=…', () => 'Observation?code=http://loinc.org|19295-5&_count=20'],
    ['read Patient/<one of theirs>', (i) => `Patient/ap-${i % 20}`],
    ['MedicationRequest?_summary=count', () => 'MedicationRequest?_summary=count'],
  ];
  console.log(`dataset: ${patients} patients, ~${patients * 7} resources; the big practitioner reaches ${team}\n`);
  const rows: string[][] = [];
  for (const [query, path] of queries) {
    const admin: number[] = [];
    for (const [persona, authorization] of personas) {
      const times: number[] = [];
      let matches = 0;
      for (let i = 0; i < runs + 3; i++) {
        const t = performance.now();
        const response = await fetch(`${base}/${path(i)}`, { headers: { authorization } });
        const body = (await response.json()) as Bundle;
        if (response.status !== 200 && response.status !== 404)
          throw new Error(`${persona} ${path(i)}: ${response.status}`);
        if (i >= 3) times.push(performance.now() - t);
        matches =
          body.resourceType === 'Bundle' ? (body.total ?? body.entry?.length ?? 0) : response.status === 200 ? 1 : 0;
      }
      times.sort((a, b) => a - b);
      if (!admin.length) admin.push(...times);
      const ratio = percentile(times, 50) / percentile(admin, 50);
      const row = [
        query,
        persona,
        percentile(times, 50).toFixed(1),
        percentile(times, 95).toFixed(1),
        ratio.toFixed(2),
        String(matches),
      ];
      rows.push(row);
      console.error(row.join(' | '));
    }
  }
  const header = ['query', 'requester', 'p50 ms', 'p95 ms', 'p50 / admin', 'last answer'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  server.close();
  await running.close();
  await engine.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
