/**
 * What the audit trail costs per interaction (issue 11), measured in one server context on the
 * embedded engine: the audit interceptor is switched in and out in alternating blocks of the same
 * work, and each block counts this process's CPU and the engine's (from /proc), so what other
 * processes do to the machine weighs on both halves alike. Reads' batches are committed inside the
 * block that made them.
 *
 *   npx tsx bench/audit.ts [--blocks 8] [--patients 100] [--prescriptions 600]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createServerContext } from '../src/app-context';
import { requesterFromClaims } from '../src/auth/requester';
import { loadConfig } from '../src/config';
import { startEmbeddedEngine } from '../src/db/embedded-engine';
import type { FhirRequest } from '../src/fhir/request';
import { dispatch } from '../src/rest/router';
import { printTable } from './scale-http';
import { cpuSeconds } from './scale-process';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

const BLOCKS = option('blocks', 8);
const PATIENTS = option('patients', 100);
const PRESCRIPTIONS = option('prescriptions', 600);
/** A clinician's app: user, client and purpose, as the audit records them. */
const REQUESTER = requesterFromClaims({
  sub: 'bench-user',
  client_id: 'bench-app',
  fhirUser: 'Practitioner/bench',
  scope: 'system/*.cruds',
  clearance: ['*'],
  purpose_of_use: 'TREAT',
});

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'meds-fhir-audit-bench-'));
  const engine = await startEmbeddedEngine({ dataDir });
  // Standing findings would evaluate behind the writes, in whichever block came next (issue 12 measures them).
  const config = { ...loadConfig({ AUTH: 'off', FINDINGS: 'off' }), databaseName: 'audit_bench' };
  const running = await createServerContext(config, engine.uri, pino({ level: 'silent' }));
  const { context } = running;
  const audit = context.interceptors.find((i) => i.name === 'audit');
  if (!audit || engine.pid === undefined) throw new Error('no audit interceptor or no engine process');
  const auditing = (on: boolean) => {
    const at = context.interceptors.indexOf(audit);
    if (on && at < 0) context.interceptors.push(audit);
    if (!on && at >= 0) context.interceptors.splice(at, 1);
  };
  let n = 0;
  const call = (method: FhirRequest['method'], path: string, query: [string, string][] = [], body?: unknown) =>
    dispatch(
      {
        method,
        path,
        query,
        headers: { contentType: 'application/fhir+json', prefer: 'return=minimal' },
        body,
        baseUrl: 'http://localhost/fhir',
        requestId: `bench-${n++}`,
        requester: REQUESTER,
        remoteAddress: '127.0.0.1',
      },
      context,
    );
  const prescription = (p: number) => ({
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    subject: { reference: `Patient/p${p}` },
    medicationCodeableConcept: { text: 'buprenorphine 8 mg / naloxone 2 mg' },
    authoredOn: '2026-01-01',
  });
  for (let p = 0; p < PATIENTS; p++) {
    await call('PUT', `Patient/p${p}`, [], {
      resourceType: 'Patient',
      id: `p${p}`,
      name: [{ family: `Fam${p % 10}` }],
    });
  }
  const ids: string[] = [];
  for (let i = 0; i < PRESCRIPTIONS; i++) {
    const created = await call('POST', 'MedicationRequest', [], prescription(i % PATIENTS));
    ids.push(/MedicationRequest\/([^/]+)/.exec(created.headers.location ?? '')?.[1] ?? '');
  }
  const work: { name: string; count: number; run: (k: number) => Promise<unknown> }[] = [
    {
      name: 'create MedicationRequest',
      count: 150,
      run: (k) => call('POST', 'MedicationRequest', [], prescription(k)),
    },
    {
      name: 'read MedicationRequest',
      count: 400,
      run: (k) => call('GET', `MedicationRequest/${ids[(k * 7919) % ids.length]}`),
    },
    {
      name: 'search MedicationRequest?patient&status',
      count: 150,
      run: (k) =>
        call('GET', 'MedicationRequest', [
          ['patient', `p${k % PATIENTS}`],
          ['status', 'active'],
        ]),
    },
    {
      name: 'search Patient?name (20 patients)',
      count: 100,
      run: (k) =>
        call('GET', 'Patient', [
          ['name', `fam${k % 10}`],
          ['_count', '20'],
        ]),
    },
  ];
  const cpu = () => {
    const own = process.cpuUsage();
    return (own.user + own.system) / 1e6 + (cpuSeconds(engine.pid as number) ?? 0);
  };
  const samples = new Map(work.map((w) => [w.name, { on: [] as number[], off: [] as number[] }]));
  for (let block = 0; block < BLOCKS; block++) {
    const on = block % 2 === 0;
    auditing(on);
    for (const w of work) {
      const before = cpu();
      let k = 0;
      // Ten at a time, as ten clients would.
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          while (k < w.count) await w.run(k++);
        }),
      );
      await running.audit.flush();
      samples.get(w.name)?.[on ? 'on' : 'off'].push((1000 * (cpu() - before)) / w.count);
    }
  }
  auditing(true);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  console.log(
    `CPU of this process and the engine per interaction (ms), ${BLOCKS / 2} blocks each, load average ${loadavg()[0].toFixed(1)}`,
  );
  printTable(
    ['interaction', 'audit off', 'audit on', 'audit cost', 'cost'],
    work.map((w) => {
      const s = samples.get(w.name) as { on: number[]; off: number[] };
      const [off, on] = [mean(s.off), mean(s.on)];
      return [
        w.name,
        off.toFixed(2),
        on.toFixed(2),
        (on - off).toFixed(2),
        `${((100 * (on - off)) / off).toFixed(0)}%`,
      ];
    }),
  );
  await running.close();
  await engine.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
