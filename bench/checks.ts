// Checks benchmark: in-process latency of reviewPatient (the engine behind Patient/[id]/$medication-review)
// for patients with a year of history (~50 resources each: prescriptions, fills, visits, drug screens,
// statements, a care plan), all nine built-in checks and PDC of every tracked class.
// Usage: npx tsx bench/checks.ts   (env: BENCH_PATIENTS, default 200; BENCH_REVIEWS, default 5000)
// The HTTP operation (database load + this) is benchmarked by the REST benchmark once the lead wires it.
import type { Resource } from '@medplum/fhirtypes';
import { loadChecks, loadMedicationClasses, reviewPatient } from '../src/checks';
import * as b from '../test/fixtures/checks/builders';

const PATIENTS = Number(process.env.BENCH_PATIENTS ?? 200);
const REVIEWS = Number(process.env.BENCH_REVIEWS ?? 5000);
const DATE = '2026-06-30';

function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

/** A year of history; the index varies gaps, drugs and care events so different checks fire. */
function history(i: number): Resource[] {
  const p = `bench-${i}`;
  const onBup = i % 2 === 0;
  const main = onBup ? b.MEDS.buprenorphineNaloxone8 : b.MEDS.sertraline;
  const gap = i % 5 === 0 ? 12 : 0; // every fifth patient refills late
  const resources: Resource[] = [
    b.patient(p),
    b.condition(`${p}-dx`, b.OUD_DIAGNOSIS, p),
    b.request(`${p}-rx-main`, main, '2025-07-01', { patientId: p, dosageInstruction: [b.daily(onBup ? 2 : 1)] }),
    b.request(`${p}-rx-statin`, b.MEDS.atorvastatin, '2025-07-01', { patientId: p }),
  ];
  let day = '2025-07-01';
  for (let k = 0; k < 12; k++) {
    resources.push(b.dispense(`${p}-main-${k}`, main, day, 28, { patientId: p, prescription: `${p}-rx-main` }));
    day = addDays(day, 28 + (k % 3 === 0 ? gap : 0));
  }
  for (let k = 0; k < 12; k++) {
    resources.push(
      b.dispense(`${p}-statin-${k}`, b.MEDS.atorvastatin, addDays('2025-07-03', k * 31), 30, {
        patientId: p,
        prescription: `${p}-rx-statin`,
      }),
    );
    resources.push(
      b.encounter(
        `${p}-visit-${k}`,
        addDays('2025-07-05', k * 30),
        k === 11 && i % 3 === 0 ? 'cancelled' : 'finished',
        p,
      ),
    );
  }
  for (let k = 0; k < 6; k++)
    resources.push(b.observation(`${p}-uds-${k}`, b.UDS_BUPRENORPHINE, addDays('2025-07-10', k * 60 + (i % 4) * 7), p));
  resources.push(b.statement(`${p}-ms-1`, main, addDays(DATE, -3 - (i % 20)), 'not-taken', p));
  resources.push(b.statement(`${p}-ms-2`, main, addDays(DATE, -40), 'active', p));
  resources.push(
    b.carePlan(
      `${p}-plan`,
      [
        { description: 'Counselling', status: 'completed', due: '2026-05-15' },
        { description: 'Follow-up visit', status: i % 4 === 0 ? 'scheduled' : 'completed', due: '2026-06-15' },
        { description: 'Follow-up visit', status: 'scheduled', due: '2026-07-15' },
      ],
      p,
    ),
  );
  if (i % 7 === 0)
    resources.push(
      b.request(`${p}-rx-oxy`, b.MEDS.oxycodone10, '2026-06-01', { patientId: p, dosageInstruction: [b.daily(1, 4)] }),
    );
  if (i % 11 === 0) resources.push(b.request(`${p}-rx-benzo`, b.MEDS.alprazolam05, '2026-06-01', { patientId: p }));
  return resources;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

let t = performance.now();
const classes = loadMedicationClasses();
const checks = loadChecks();
const loadMs = performance.now() - t;
const patients = Array.from({ length: PATIENTS }, (_, i) => history(i));
const avgResources = patients.reduce((s, r) => s + r.length, 0) / patients.length;

t = performance.now();
const first = reviewPatient(
  { patient: patients[0][0] as b.PatientResource, resources: patients[0], date: DATE },
  classes,
  checks,
);
const firstMs = performance.now() - t;

for (let i = 0; i < 200; i++) {
  const r = patients[i % PATIENTS];
  reviewPatient({ patient: r[0] as b.PatientResource, resources: r, date: DATE }, classes, checks);
}

const times: number[] = [];
let findings = 0;
const started = performance.now();
for (let i = 0; i < REVIEWS; i++) {
  const r = patients[i % PATIENTS];
  t = performance.now();
  const out = reviewPatient({ patient: r[0] as b.PatientResource, resources: r, date: DATE }, classes, checks);
  times.push(performance.now() - t);
  findings += out.parameter?.filter((p) => p.name === 'finding').length ?? 0;
}
const wall = performance.now() - started;
times.sort((x, y) => x - y);

const rows: [string, string][] = [
  ['patients (distinct)', String(PATIENTS)],
  ['resources per patient (avg)', avgResources.toFixed(1)],
  ['checks / classes', `${checks.list().length} / ${classes.classes().length}`],
  ['load value sets + compile checks (ms)', loadMs.toFixed(1)],
  ['first review, cold (ms)', firstMs.toFixed(2)],
  ['reviews timed', String(REVIEWS)],
  ['findings per review (avg)', (findings / REVIEWS).toFixed(2)],
  ['p50 (ms)', percentile(times, 0.5).toFixed(3)],
  ['p95 (ms)', percentile(times, 0.95).toFixed(3)],
  ['p99 (ms)', percentile(times, 0.99).toFixed(3)],
  ['reviews/s (single thread)', (REVIEWS / (wall / 1000)).toFixed(0)],
];
console.log('\n$medication-review engine, in-process (node', process.version + ')');
for (const [k, v] of rows) console.log(`${k.padEnd(40)} ${v.padStart(12)}`);
if (!first.parameter?.length) process.exitCode = 1;
