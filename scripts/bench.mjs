// `npm run bench -- [suite] [FHIR base URL]`: runs the benchmark suites in bench/ against a running
// server (start one with `npm start`) and prints a table per suite. The search benchmark is not a suite
// here: it loads 200,000 resources straight into the database and calls search() in process, so it
// runs on its own with `npm run bench:search` (and `npm run bench:explain` for the query plans).
import { restBenchmark, useAuthorization as restAuthorization } from '../bench/rest.mjs';
import { dispenseBenchmark, transactionBenchmark, useAuthorization as syncAuthorization } from '../bench/sync.mjs';
import { signToken } from './dev-token.mjs';

const args = process.argv.slice(2);
const base = (
  args.find((a) => a.startsWith('http')) ??
  process.env.FHIR_BASE_URL ??
  'http://localhost:8080/fhir'
).replace(/\/$/, '');
const suites = args.filter((a) => !a.startsWith('http'));
// FHIR_TOKEN, or an administrator's token signed like `npm run token` does (development mode's secret).
const token =
  process.env.FHIR_TOKEN ??
  (await signToken({ scope: 'system/*.cruds', clearance: ['*'] }, { subject: 'npm-run-bench' }));
restAuthorization(`Bearer ${token}`);
syncAuthorization(`Bearer ${token}`);
const all = { rest: restBenchmark, transaction: transactionBenchmark, dispense: dispenseBenchmark };
const selected = suites.length ? suites : Object.keys(all);

console.log(
  `meds-fhir benchmarks against ${base} (${process.env.BENCH_SECONDS ?? 10} s per scenario, ${process.env.BENCH_CONNECTIONS ?? 10} connections)`,
);
for (const name of selected) {
  const suite = all[name];
  if (!suite) {
    console.error(`unknown suite "${name}"; known: ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n## ${name}`);
  console.table(await suite(base));
}
