/**
 * The hostile-input probe of issue 11 against a running server: N generated hostile requests (the
 * arbitraries of test/support/hostile.ts) sent with C at a time, while /healthz is asked every 50 ms
 * on its own connection. Prints the statuses, the latencies (all, and the slowest kinds), the requests
 * over 2 s and the health-check latencies, against the goal: no 500, nothing over 2 s, health checks
 * within 100 ms.
 *
 *   npx tsx bench/hostile.ts --base http://127.0.0.1:8181/fhir [--count 10000] [--concurrency 8] [--seed 1]
 *
 * Traffic goes to 127.0.0.1 only. The server's database gets two Patients and whatever the requests
 * manage to store; use a database of its own.
 */
import fc from 'fast-check';
import { Agent, request as httpRequest } from 'node:http';
import { appendFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { hostileRequest, render, type HostileSpec } from '../test/support/hostile';

const args = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const base = new URL(option('base', 'http://127.0.0.1:8181/fhir').replace(/\/$/, ''));
const count = Number(option('count', '10000'));
const concurrency = Number(option('concurrency', '8'));
const seed = Number(option('seed', '1'));
/** --trace FILE: one JSON line per request (start, duration, status, kind, URL) to correlate with server logs. */
const traceFile = option('trace', '');
const TIMEOUT_MS = 30_000;
const GOAL_MS = 2_000;
const HEALTH_GOAL_MS = 100;
const HEALTH_EVERY_MS = 50;

if (base.hostname !== '127.0.0.1' && base.hostname !== 'localhost') {
  throw new Error(`the probe only talks to 127.0.0.1, not ${base.hostname}`);
}
const root = `${base.protocol}//${base.host}`;
const basePath = base.pathname;

interface Answer {
  status: number;
  ms: number;
  body: string;
}

/** One request with node:http: any method with any body and any header, as a hostile client sends. */
function send(
  agent: Agent,
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const done = (status: number, text: string) => resolve({ status, ms: performance.now() - started, body: text });
    const req = httpRequest(`${root}${url}`, {
      method,
      agent,
      headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      timeout: TIMEOUT_MS,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => done(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
      res.on('error', (error) => done(0, String(error)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => done(0, String(error)));
    req.end(body);
  });
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function seedPatients(agent: Agent): Promise<string[]> {
  const ids: string[] = [];
  for (const mrn of ['probe-a', 'probe-b']) {
    const body = Buffer.from(
      JSON.stringify({
        resourceType: 'Patient',
        identifier: [{ system: 'urn:hostile', value: mrn }],
        name: [{ family: 'Probe', given: ['Hostile'] }],
        gender: 'female',
      }),
    );
    const answer = await send(agent, 'POST', `${basePath}/Patient`, { 'content-type': 'application/fhir+json' }, body);
    if (answer.status !== 201) throw new Error(`seeding a Patient answered ${answer.status}: ${answer.body}`);
    ids.push((JSON.parse(answer.body) as { id: string }).id);
  }
  return ids;
}

/** Asks /healthz every HEALTH_EVERY_MS (one at a time, on its own socket) until stopped. */
function healthChecks(): { stop: () => Promise<number[]> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const answer = await send(agent, 'GET', '/healthz', {});
      latencies.push(answer.status === 200 ? answer.ms : Number.POSITIVE_INFINITY);
      await new Promise((resolve) => setTimeout(resolve, HEALTH_EVERY_MS));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      agent.destroy();
      return latencies;
    },
  };
}

async function main(): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const ids = await seedPatients(agent);
  if (traceFile) writeFileSync(traceFile, '');
  // Paths in the arbitraries are below the server root, FHIR base /fhir.
  const specs = fc.sample(hostileRequest(ids), { numRuns: count, seed });
  const statuses = new Map<number, number>();
  const byKind = new Map<string, number[]>();
  const slow: { ms: number; spec: HostileSpec; status: number }[] = [];
  const serverErrors: { spec: HostileSpec; status: number; body: string }[] = [];
  const latencies: number[] = [];
  const health = healthChecks();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < specs.length) {
      const spec = specs[next++];
      const { method, url, headers, body } = render(spec);
      const at = new Date().toISOString();
      const answer = await send(agent, method, url.replace(/^\/fhir/, basePath), headers, body);
      if (traceFile) {
        const line = {
          at,
          ms: Math.round(answer.ms),
          status: answer.status,
          kind: spec.kind,
          method,
          url: url.slice(0, 200),
        };
        appendFileSync(traceFile, `${JSON.stringify(line)}\n`);
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      latencies.push(answer.ms);
      const kindLatencies = byKind.get(spec.kind) ?? [];
      kindLatencies.push(answer.ms);
      byKind.set(spec.kind, kindLatencies);
      if (answer.ms > GOAL_MS) slow.push({ ms: answer.ms, spec, status: answer.status });
      if (answer.status >= 500 || answer.status === 0)
        serverErrors.push({ spec, status: answer.status, body: answer.body });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const healthLatencies = (await health.stop()).sort((a, b) => a - b);
  agent.destroy();

  latencies.sort((a, b) => a - b);
  console.log(
    `hostile probe: ${specs.length} requests, ${concurrency} at a time, seed ${seed}, ${elapsed.toFixed(1)} s`,
  );
  console.log('\nstatus  count');
  for (const [status, n] of [...statuses].sort((a, b) => a[0] - b[0])) {
    console.log(`${String(status === 0 ? 'none' : status).padEnd(7)} ${n}`);
  }
  console.log(
    `\nlatency  p50 ${fmt(percentile(latencies, 50))}  p99 ${fmt(percentile(latencies, 99))}  max ${fmt(latencies[latencies.length - 1] ?? 0)}`,
  );
  console.log('\nkind                               count      p99      max');
  const kinds = [...byKind].map(([kind, ms]) => ({ kind, ms: ms.sort((a, b) => a - b) }));
  for (const { kind, ms } of kinds.sort((a, b) => b.ms[b.ms.length - 1] - a.ms[a.ms.length - 1])) {
    console.log(
      `${kind.padEnd(34)} ${String(ms.length).padStart(5)} ${fmt(percentile(ms, 99)).padStart(10)} ${fmt(ms[ms.length - 1]).padStart(10)}`,
    );
  }
  const healthMax = healthLatencies[healthLatencies.length - 1] ?? 0;
  const healthOver = healthLatencies.filter((ms) => ms > HEALTH_GOAL_MS).length;
  console.log(
    `\nhealth checks  ${healthLatencies.length}  p50 ${fmt(percentile(healthLatencies, 50))}  p99 ${fmt(percentile(healthLatencies, 99))}  max ${fmt(healthMax)}  over ${HEALTH_GOAL_MS} ms: ${healthOver}`,
  );
  const fiveHundreds = serverErrors.filter((e) => e.status === 500).length;
  console.log('\ngoal                                    result');
  console.log(`no answer of 500                        ${fiveHundreds === 0 ? 'met' : `NOT MET (${fiveHundreds})`}`);
  console.log(
    `no 5xx or dropped connection            ${serverErrors.length === 0 ? 'met' : `NOT MET (${serverErrors.length})`}`,
  );
  console.log(
    `no request over ${GOAL_MS} ms                  ${slow.length === 0 ? 'met' : `NOT MET (${slow.length})`}`,
  );
  console.log(
    `health checks within ${HEALTH_GOAL_MS} ms             ${healthOver === 0 ? 'met' : `NOT MET (${healthOver} of ${healthLatencies.length})`}`,
  );
  for (const { spec, status, body } of serverErrors.slice(0, 10)) {
    console.log(`\n${status} ${spec.kind} ${spec.method} ${render(spec).url.slice(0, 160)}\n  ${body.slice(0, 300)}`);
  }
  for (const { ms, spec, status } of slow.sort((a, b) => b.ms - a.ms).slice(0, 10)) {
    console.log(`slow: ${fmt(ms)} ${status} ${spec.kind} ${spec.method} ${render(spec).url.slice(0, 160)}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
