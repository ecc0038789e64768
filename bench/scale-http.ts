import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * The HTTP side of the scale benchmark: keep-alive connections to 127.0.0.1 only, one latency per
 * request measured here, and the statistics printed. node:http rather than fetch or autocannon: the
 * mix needs a latency per query kind and exact p95/p99 (autocannon reports one histogram per run, and
 * fetch's pool does not let us bound the connections per phase).
 */

export interface Answer {
  status: number;
  body: string;
  ms: number;
}

export interface Client {
  base: URL;
  agent: Agent;
}

let authorization: string | undefined;

/** The `Authorization` header every request of the benchmark carries (a bearer token), if any. */
export function useAuthorization(value: string | undefined): void {
  authorization = value;
}

/** A pool of exactly `connections` keep-alive sockets to the FHIR base, which must be on 127.0.0.1. */
export function client(base: string, connections: number): Client {
  const url = new URL(base.replace(/\/$/, '') + '/');
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
    throw new Error(`the benchmark only talks to 127.0.0.1, not ${url.hostname}`);
  }
  url.hostname = '127.0.0.1';
  return { base: url, agent: new Agent({ keepAlive: true, maxSockets: connections }) };
}

/** One request; network failures and timeouts come back as status 0 with the error text. */
export function send(
  c: Client,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; timeoutMs: number },
): Promise<Answer> {
  const started = performance.now();
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  return new Promise((resolve) => {
    const done = (status: number, body: string) => resolve({ status, body, ms: performance.now() - started });
    const req = httpRequest(
      new URL(path, c.base),
      {
        method,
        agent: c.agent,
        headers: {
          accept: 'application/fhir+json',
          ...(authorization ? { authorization } : {}),
          ...(payload ? { 'content-type': 'application/fhir+json', 'content-length': payload.length } : {}),
          // BENCH_AUTHORIZATION="Bearer <token>" runs the benchmark with access control on.
          ...(process.env.BENCH_AUTHORIZATION ? { authorization: process.env.BENCH_AUTHORIZATION } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
        res.on('error', (error) => done(0, String(error)));
      },
    );
    req.setTimeout(options.timeoutMs, () => req.destroy(new Error(`timeout after ${options.timeoutMs} ms`)));
    req.on('error', (error) => done(0, String(error)));
    req.end(payload);
  });
}

/** Nearest-rank percentile of ascending samples. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))];
}

export interface Summary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(latencies: number[]): Summary {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
  };
}

/** Prints rows as an aligned text table (console.table quotes strings and adds an index column). */
export function printTable(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((row) => row[c].length)));
  // Figures align right so their digits line up; words align left.
  const line = (row: string[]) =>
    row
      .map((cell, c) => (/^[-\d.]+$/.test(cell) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  console.log(line(cells[0]));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells.slice(1)) console.log(line(row));
}

export const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(value < 10 ? 1 : 0) : '-');

/** Runs `workers` loops of `once` until `seconds` have passed (no new request starts after that). */
export async function forSeconds(
  workers: number,
  seconds: number,
  once: (n: number) => Promise<void>,
): Promise<number> {
  const started = performance.now();
  const until = started + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < until) await once(n++);
    }),
  );
  return (performance.now() - started) / 1000;
}
