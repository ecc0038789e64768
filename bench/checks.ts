// Checks benchmark: in-process latency of reviewPatient (the engine behind Patient/[id]/$medication-review)
// for patients with a year of history (~50 resources each: prescriptions, fills, visits, drug screens,
// statements, a care plan), all nine built-in checks and PDC of every tracked class.
// Usage: npx tsx bench/checks.ts   (env: BENCH_PATIENTS, default 200; BENCH_REVIEWS, default 5000)
// The HTTP operation (database load + this) is benchmarked by bench/medication-review.ts.
import { loadChecks, loadMedicationClasses, reviewPatient } from '../src/checks';
import type * as b from '../test/fixtures/checks/builders';
import { history, REVIEW_DATE as DATE } from './review-cohort';

const PATIENTS = Number(process.env.BENCH_PATIENTS ?? 200);
const REVIEWS = Number(process.env.BENCH_REVIEWS ?? 5000);

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
