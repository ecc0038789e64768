import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { serverNodeFlags } from '../scripts/server-node-flags.mjs';

/**
 * The server side of the scale benchmark: starting `node dist/server.js` on a fresh data directory,
 * finding its embedded engine, sampling their memory, and reading back what the server logged.
 */

export interface SpawnedServer {
  base: string;
  pid: number;
  dataDir: string;
  logFile: string;
  startupMs: number;
  child: ChildProcess;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilReady(base: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const readyz = base.replace(/\/fhir$/, '/readyz');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited during start-up (${child.exitCode})`);
    try {
      if ((await fetch(readyz)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the server was not ready within ${timeoutMs} ms`);
}

/** The newest modification time of the TypeScript sources under `dir` (what tsc compiles). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * The benchmark builds nothing: it runs the tree's compiled server. A dist/ older than src/ would
 * measure other code than the tree holds, so that is refused with the command that compiles it.
 */
function checkCompiled(root: string): void {
  const server = join(root, 'dist', 'server.js');
  if (!existsSync(server) || statSync(server).mtimeMs < newestSource(join(root, 'src'))) {
    throw new Error(`${server} is missing or older than src/: run "npx tsc -p tsconfig.build.json" in ${root} first`);
  }
}

/**
 * Starts the tree's compiled server on a free port with a data directory of its own, so the
 * measurement starts from an empty database and the engine's caches are cold, as after an install.
 * Logs go to a file beside the data, to be read back at the end.
 */
export async function spawnServer(root: string, logLevel: string, auth: { secret?: string }): Promise<SpawnedServer> {
  checkCompiled(root);
  const dataDir = join(root, '.benchdata', `scale-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const logFile = join(dataDir, 'server.log');
  const log = createWriteStream(logFile);
  const started = Date.now();
  const nodeOptions = process.env.SERVER_NODE_OPTIONS ?? process.env.NODE_OPTIONS ?? '';
  // The heap settings `npm start` gives the server, unless the options set their own.
  const child = spawn(process.execPath, [...serverNodeFlags(nodeOptions), 'dist/server.js'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: logLevel,
      // Authorization on (a secret of this run's, for the benchmark's own token) or off, to compare the two.
      ...(auth.secret ? { AUTH_HS256_SECRET: auth.secret, AUTH: 'on' } : { AUTH: 'off' }),
      // Node flags for the server alone (e.g. a heap limit), not for this client.
      NODE_OPTIONS: nodeOptions,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const base = `http://127.0.0.1:${port}/fhir`;
  await waitUntilReady(base, child, 60_000);
  if (child.pid === undefined) throw new Error('the server has no pid');
  return { base, pid: child.pid, dataDir, logFile, startupMs: Date.now() - started, child };
}

/** SIGTERM (the server drains and stops its engine), SIGKILL if it has not exited after 30 s. */
export async function stopServer(server: SpawnedServer): Promise<void> {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** The first child process of `pid` (the server's embedded engine), from the parent ids in /proc. */
export function childPid(pid: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name is in parentheses and may contain spaces: the fields after it are fixed.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

/** User plus system CPU seconds a process has used, from /proc/PID/stat (fields 14 and 15). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Clock ticks are 100 per second on Linux (sysconf(_SC_CLK_TCK), not exposed to Node).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM of a process in bytes, or undefined once it is gone. */
function memoryOf(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(/\d+/.exec(status.split('\n').find((l) => l.startsWith(field)) ?? '')?.[0]);
    return { rss: kib('VmRSS:') * 1024, hwm: kib('VmHWM:') * 1024 };
  } catch {
    return undefined;
  }
}

export interface MemoryPeaks {
  /** Highest VmRSS seen by the 250 ms sampling since the last mark. */
  sampled: number;
  /** The kernel's own peak (VmHWM), which also covers moments between samples and before we started. */
  hwm: number;
}

/** Samples the RSS of some processes every 250 ms; `mark()` returns the peaks per phase and overall. */
export class MemorySampler {
  private readonly phase = new Map<number, MemoryPeaks>();
  private readonly overall = new Map<number, MemoryPeaks>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: number[]) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 250);
  }

  private sample(): void {
    for (const pid of this.pids) {
      const memory = memoryOf(pid);
      if (!memory) continue;
      for (const peaks of [this.phase, this.overall]) {
        const before = peaks.get(pid) ?? { sampled: 0, hwm: 0 };
        peaks.set(pid, { sampled: Math.max(before.sampled, memory.rss), hwm: Math.max(before.hwm, memory.hwm) });
      }
    }
  }

  /** The peaks of the phase that ends now, per pid; the next phase starts from zero. */
  mark(): Map<number, MemoryPeaks> {
    this.sample();
    const peaks = new Map(this.phase);
    this.phase.clear();
    return peaks;
  }

  stop(): Map<number, MemoryPeaks> {
    this.sample();
    clearInterval(this.timer);
    return new Map(this.overall);
  }
}

export const mib = (bytes: number | undefined): string =>
  bytes === undefined || !Number.isFinite(bytes) || bytes === 0 ? '-' : `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

interface LogLine {
  level?: number;
  msg?: string;
  res?: { statusCode?: number };
  err?: { message?: string };
}

export interface LogSummary {
  lines: number;
  byLevel: Record<string, number>;
  serverErrors: number;
  /** Distinct warning and error messages with their counts, most frequent first. */
  messages: [string, number][];
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** What the server logged: counts per level, 5xx answers, and its warnings and errors. */
export function summarizeLog(file: string): LogSummary {
  const summary: LogSummary = { lines: 0, byLevel: {}, serverErrors: 0, messages: [] };
  const messages = new Map<string, number>();
  for (const text of readFileSync(file, 'utf8').split('\n')) {
    if (!text.trim()) continue;
    summary.lines++;
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      messages.set(`(not JSON) ${text.slice(0, 160)}`, (messages.get(`(not JSON) ${text.slice(0, 160)}`) ?? 0) + 1);
      continue;
    }
    const level = LEVELS[line.level ?? 0] ?? String(line.level);
    summary.byLevel[level] = (summary.byLevel[level] ?? 0) + 1;
    if ((line.res?.statusCode ?? 0) >= 500) summary.serverErrors++;
    if ((line.level ?? 0) >= 40) {
      const key = `${level}: ${line.msg ?? ''}${line.err?.message ? ` (${line.err.message.slice(0, 160)})` : ''}`;
      messages.set(key, (messages.get(key) ?? 0) + 1);
    }
  }
  summary.messages = [...messages].sort((a, b) => b[1] - a[1]).slice(0, 15);
  return summary;
}
