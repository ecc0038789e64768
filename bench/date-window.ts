/**
 * `Observation?code=…&date=ge<month>&date=lt<next month>` with the date parameters compiled one by one
 * against the window split on the span marker (src/search/compile/date-ranges.ts): the same generated
 * Observations (two years, four codes, half of them PHQ-9) in two databases of one embedded engine, one
 * of them marked, queried alternately; latency and the engine's CPU per query.
 *   [ENGINE_BINARY=<engine build>] npx tsx bench/date-window.ts [--observations 40000] [--rounds 40]
 */
import type { Observation } from '@medplum/fhirtypes';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import pino from 'pino';
import { search, SearchParameterRegistry } from '../src/search';
import { markWideDates } from '../src/search/date-spans';
import { searchIndexes } from '../src/search/indexes';
import { extractSearchIndex } from '../src/search/extract';
import { startEmbeddedEngine } from '../src/db/embedded-engine';
import { cpuSeconds } from './scale-process';

const registry = new SearchParameterRegistry();
const CODES = ['44261-6', '19295-5', '3426-4', '16208-5'];
async function load(db: Db, n: number) {
  for (const { key, ...rest } of searchIndexes('Observation'))
    await db.collection('Observation').createIndex(key as never, rest);
  for (let i = 0; i < n; i += 1000) {
    const docs = [];
    for (let k = i; k < Math.min(n, i + 1000); k++) {
      const code = k % 2 ? CODES[0] : CODES[1 + (k % 3)];
      const when = new Date(Date.UTC(2024, 0, 1) + ((k * 7919) % 730) * 86_400_000 + (k % 86400) * 1000);
      const resource: Observation = {
        resourceType: 'Observation',
        id: `o${k}`,
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code }] },
        subject: { reference: `Patient/p${k % 5000}` },
        effectiveDateTime: when.toISOString(),
      };
      docs.push({
        _id: `o${k}`,
        v: 1,
        ts: new Date(),
        resource,
        sp: extractSearchIndex(resource, registry),
        compartments: [`Patient/p${k % 5000}`],
      });
    }
    await db.collection('Observation').insertMany(docs as never[]);
  }
}
function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

async function main() {
  const n = option('observations', 40000);
  const rounds = option('rounds', 40);
  // ENGINE_BINARY: another engine build, to compare builds on the same data.
  const engine = await startEmbeddedEngine({
    binary: process.env.ENGINE_BINARY,
    dataDir: mkdtempSync(join(tmpdir(), 'meds-fhir-date-window-')),
  });
  const client = await MongoClient.connect(engine.uri);
  const setups = [] as { name: string; db: Db; pid: number }[];
  for (const name of ['one by one', 'split window']) {
    const db = client.db(name === 'one by one' ? 'plain' : 'split');
    await load(db, n);
    if (name === 'split window') await markWideDates(db, ['Observation'], pino({ level: 'silent' }));
    setups.push({ name, db, pid: engine.pid as number });
  }
  const options = { maxCount: 100, defaultCount: 20, pageSecret: 's' };
  const stats = new Map(setups.map((s) => [s.name, { ms: [] as number[], cpu: 0 }]));
  for (let round = 0; round < rounds; round++) {
    const m = round % 24;
    const first = (k: number) => new Date(Date.UTC(2024, k, 1)).toISOString().slice(0, 10);
    const query = `code=http://loinc.org|${round % 2 ? CODES[0] : CODES[1]}&date=ge${first(m)}&date=lt${first(m + 1)}`;
    for (const s of round % 2 ? setups : [...setups].reverse()) {
      const c0 = cpuSeconds(s.pid) as number;
      const t0 = performance.now();
      await search(
        s.db,
        { resourceType: 'Observation', params: new URLSearchParams(query), baseUrl: 'http://x/fhir' },
        registry,
        options,
      );
      const st = stats.get(s.name)!;
      st.ms.push(performance.now() - t0);
      st.cpu += (cpuSeconds(s.pid) as number) - c0;
    }
  }
  for (const [name, st] of stats) {
    const sorted = st.ms.sort((a, b) => a - b);
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(1);
    console.log(
      `${name}: p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, engine CPU ${((st.cpu * 1000) / rounds).toFixed(1)} ms per query`,
    );
  }
  await client.close();
  await engine.stop();
}
main();
