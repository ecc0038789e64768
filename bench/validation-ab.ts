// Validator A/B: this tree's validator against another checkout's (e.g. the commit before a change), in
// one process, in turns, timed in CPU time of this process (so the load of other processes on a shared
// machine shows less than in wall time). In one process the module imported first runs some 10% faster
// whatever its code (checked with two copies of the same tree), so each comparison runs twice, once in
// each import order, in child processes, and the geometric mean of the two ratios is printed.
// Usage: npx tsx bench/validation-ab.ts /path/to/other/checkout   (env: AB_ROUNDS, default 16)
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { typicalRequest } from './validation-fixtures';

const UCUM = 'http://unitsofmeasure.org';

/** bench/validation.ts's typical prescription, and the same with its film quantities in UCUM. */
function cases(): [string, Record<string, unknown>][] {
  const typical = structuredClone(typicalRequest);
  const ucum = structuredClone(typical);
  ucum.dosageInstruction[0].doseAndRate = [
    { doseQuantity: { value: 2, unit: 'film', system: UCUM, code: '{film}' } as never },
  ];
  ucum.dispenseRequest.quantity = { value: 56, unit: 'film', system: UCUM, code: '{film}' } as never;
  return [
    ['MedicationRequest (typical) + meds-prescription', typical],
    ['the same with UCUM {film} quantities', ucum],
  ];
}

interface Validating {
  validate(resource: unknown): { severity: string }[];
}

/** Child: `first` and `second` are the two trees' src/validation, imported in that order. */
function child(first: string, second: string, rounds: number): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const a = (require(first) as { createValidator(): Validating }).createValidator();
  const b = (require(second) as { createValidator(): Validating }).createValidator();
  /* eslint-enable @typescript-eslint/no-require-imports */
  const out: Record<string, [number, number]> = {};
  for (const [name, resource] of cases()) {
    for (const v of [a, b]) {
      if (v.validate(resource).some((i) => i.severity === 'error')) throw new Error(`${name} is invalid`);
    }
    const rate = (v: Validating): number => {
      for (let i = 0; i < 2000; i++) v.validate(resource);
      const n = 20000;
      const start = process.cpuUsage();
      for (let i = 0; i < n; i++) v.validate(resource);
      const used = process.cpuUsage(start);
      return n / ((used.user + used.system) / 1e6);
    };
    const ra: number[] = [];
    const rb: number[] = [];
    for (let round = 0; round < rounds; round++) {
      if (round % 2) {
        ra.push(rate(a));
        rb.push(rate(b));
      } else {
        rb.push(rate(b));
        ra.push(rate(a));
      }
    }
    const median = (x: number[]): number => [...x].sort((p, q) => p - q)[x.length >> 1];
    out[name] = [median(ra), median(rb)];
  }
  console.log(JSON.stringify(out));
}

function main(): void {
  const [mode, x, y] = process.argv.slice(2);
  const rounds = Number(process.env.AB_ROUNDS ?? 16);
  if (mode === '--child') return child(x, y, rounds);
  if (!mode) throw new Error('usage: npx tsx bench/validation-ab.ts /path/to/other/checkout');
  const here = join(__dirname, '..', 'src', 'validation');
  const other = join(resolve(mode), 'src', 'validation');
  const run = (first: string, second: string): Record<string, [number, number]> =>
    JSON.parse(
      execFileSync(process.execPath, ['--import', 'tsx', __filename, '--child', first, second], { encoding: 'utf8' }),
    ) as Record<string, [number, number]>;
  const otherFirst = run(other, here); // [other, here]
  const hereFirst = run(here, other); // [here, other]
  console.log(`| resource | other (${mode}) validations/CPU-s | this tree | this / other |`);
  console.log('|---|---|---|---|');
  for (const [name] of cases()) {
    const [o1, h1] = otherFirst[name];
    const [h2, o2] = hereFirst[name];
    const ratio = Math.sqrt((h1 / o1) * (h2 / o2));
    const mean = (p: number, q: number): string => Math.sqrt(p * q).toFixed(0);
    console.log(`| ${name} | ${mean(o1, o2)} | ${mean(h1, h2)} | ${ratio.toFixed(3)} |`);
  }
  console.log(
    `(medians of ${rounds} interleaved rounds of 20,000 validations; geometric means over both import orders)`,
  );
}

main();
