// Fault-injection harness: the embedded engine and real meds-fhir server processes as children of the
// test, a wire-level proxy between them that can stop the world at a chosen database command, SIGKILL
// of a server or of servers and engine together, and restarts on the same data. Everything listens on
// 127.0.0.1, every wait is bounded, and a watchdog process kills whatever the harness started if the
// test runner itself dies.
import { ChildProcess, spawn } from 'node:child_process';
import { TEST_SECRET } from '../support/tokens';
import { TEST_QUEUE_WAIT_MS, TEST_TIME_BUDGET_MS } from '../support/server';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, defaultEngineBinary, freePort } from '../../src/db/embedded-engine';
import { closeConnections, fhir } from './fhir-client';

const REPO_ROOT = join(__dirname, '..', '..');
/** How long a server may take to answer /readyz (the budget is 5 s; a busy 2-core CI machine needs slack). */
const READY_TIMEOUT_MS = 45_000;
const ENGINE_LISTEN_TIMEOUT_MS = 20_000;
/** After this the watchdog kills every child even if the harness is still running. */
const WATCHDOG_LIFETIME_MS = 20 * 60_000;
/** One fixed paging key, so a cursor from one server process is accepted by another. */
const PAGE_TOKEN_SECRET = 'fault-harness-shared-page-token-secret';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A bound for a race: resolves after `ms` without keeping the process alive once the race is won. */
export const timeLimit = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

// ---------------------------------------------------------------------------------------------------
// Watchdog

let watchdog: ChildProcess | undefined;

function startWatchdog(): ChildProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(__dirname, 'watchdog.ts'), String(WATCHDOG_LIFETIME_MS)],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  // The watchdog must never keep the test runner alive.
  child.unref();
  child.channel?.unref();
  child.once('exit', () => {
    if (watchdog === child) watchdog = undefined;
  });
  return child;
}

function watch(pid: number): void {
  // A watchdog that died (it never should) is replaced rather than written to.
  if (!watchdog?.connected) watchdog = startWatchdog();
  watchdog.send({ add: pid });
}

function unwatch(pid: number): void {
  if (watchdog?.connected) watchdog.send({ remove: pid });
}

function stopWatchdog(): void {
  watchdog?.disconnect();
  watchdog = undefined;
}

// ---------------------------------------------------------------------------------------------------
// Child processes

/** What a child printed that deserves a look: errors and warnings of the server log, anything not JSON. */
export interface LogLine {
  source: string;
  line: string;
}

/** A child process that is watched, whose notable output is kept, and that can be killed for sure. */
class ManagedProcess {
  readonly exited: Promise<void>;
  private running = true;

  constructor(
    private readonly child: ChildProcess,
    readonly label: string,
    private readonly notable: LogLine[],
    private readonly keep: (line: string) => boolean,
  ) {
    if (child.pid === undefined) throw new Error(`${label} did not start`);
    const pid = child.pid;
    watch(pid);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        this.running = false;
        unwatch(pid);
        resolve();
      }),
    );
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream?.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim() && this.keep(line)) this.remember(line);
      });
    }
  }

  get alive(): boolean {
    return this.running;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  private remember(line: string): void {
    // Bounded: a server stuck in an error loop must not eat the test runner's memory.
    if (this.notable.length < 2000) this.notable.push({ source: this.label, line: line.slice(0, 4000) });
  }

  /** SIGKILL, as a crash or a power cut of the process would; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (graceful), then SIGKILL if it has not exited within the grace period. */
  async terminate(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Polls `probe` until it is true; throws `what` once `timeoutMs` has passed or `givenUp()` says so. */
async function waitFor(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
  givenUp: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (givenUp()) throw new Error(`${what}: the process exited`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------------
// The engine

/** The embedded FerretDB, started on a data directory that outlives it, so it can be killed and restarted. */
export class EngineProcess {
  port = 0;
  private process?: ManagedProcess;

  constructor(
    private readonly dataDir: string,
    private readonly notable: LogLine[],
  ) {}

  get alive(): boolean {
    return this.process?.alive ?? false;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  async start(): Promise<void> {
    if (!existsSync(defaultEngineBinary)) {
      throw new Error(`embedded engine binary not found at ${defaultEngineBinary}: run "npm run engine:build" first`);
    }
    // A new port on each start: the proxy follows it, and no restart waits for the old port.
    this.port = await freePort();
    const child = spawn(
      defaultEngineBinary,
      ['-listen', `127.0.0.1:${this.port}`, '-dir', join(this.dataDir, 'ferretdb')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // FerretDB logs every connection at info level, and at WARN every error answer (in a header line
    // without the error) and every connection a crash cut: keep only what looks like trouble.
    const process = new ManagedProcess(
      child,
      'engine',
      this.notable,
      (line) =>
        /\b(ERROR|WARN|panic|fatal)\b|database is locked/i.test(line) &&
        !/Response (message|header)|Failed to set deadline|Connection stopped/.test(line),
    );
    this.process = process;
    const port = this.port;
    await waitFor(
      'the engine listening',
      ENGINE_LISTEN_TIMEOUT_MS,
      () => canConnect(port),
      () => !process.alive,
    );
  }

  async kill(): Promise<void> {
    await this.process?.kill();
  }

  async stop(): Promise<void> {
    await this.process?.terminate();
  }
}

// ---------------------------------------------------------------------------------------------------
// The wire proxy

/**
 * What to do with a message the server sends to the engine: pass it on, or stop the world (nothing
 * more reaches either side) before or after passing it on.
 */
export type FrameVerdict = 'forward' | 'freeze-before' | 'freeze-after';

/** Cuts a byte stream into MongoDB wire messages (each starts with its int32 little-endian length). */
class FrameSplitter {
  private chunks: Buffer[] = [];
  private length = 0;

  push(data: Buffer): Buffer[] {
    this.chunks.push(data);
    this.length += data.length;
    const frames: Buffer[] = [];
    while (this.length >= 4) {
      const head = this.chunks[0].length >= 4 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
      const size = head.readInt32LE(0);
      if (size < 4) throw new Error(`malformed wire message of length ${size}`);
      if (this.length < size) break;
      // Joined once per complete message, so a 16 MB message is not copied once per chunk.
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.length);
      frames.push(all.subarray(0, size));
      const rest = all.subarray(size);
      this.chunks = rest.length ? [rest] : [];
      this.length = rest.length;
    }
    return frames;
  }
}

/**
 * A TCP proxy between the servers and the engine that sees every message a server sends. A fault test
 * uses it to crash at an exact point of a commit: `onFrame` picks the message, the proxy freezes (from
 * that instant nothing reaches the engine and no answer reaches a server), then the test SIGKILLs.
 * Freezing first matters: a kill takes milliseconds, during which a live server would send more writes.
 */
export class WireProxy {
  port = 0;
  upstreamPort = 0;
  onFrame?: (frame: Buffer) => FrameVerdict;
  private frozen = false;
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  async start(upstreamPort: number): Promise<void> {
    this.upstreamPort = upstreamPort;
    this.port = await freePort();
    const server = createServer((client) => this.connect(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  get uri(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  /** Stops every byte in both directions at once (the crash instant). */
  freeze(): void {
    this.frozen = true;
  }

  /** Drops every connection and lets new ones through again (after the crashed processes are gone). */
  reset(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.frozen = false;
  }

  async close(): Promise<void> {
    this.reset();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private connect(client: Socket): void {
    if (this.frozen) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: this.upstreamPort });
    for (const [socket, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(socket);
      socket.on('error', () => other.destroy());
      socket.on('close', () => {
        this.sockets.delete(socket);
        other.destroy();
      });
    }
    upstream.on('data', (data: Buffer) => {
      if (!this.frozen) client.write(data);
    });
    const splitter = new FrameSplitter();
    client.on('data', (data: Buffer) => {
      if (this.frozen) return;
      for (const frame of splitter.push(data)) {
        const verdict = this.onFrame?.(frame) ?? 'forward';
        if (verdict === 'freeze-before') this.frozen = true;
        if (this.frozen) return;
        upstream.write(frame);
        if (verdict === 'freeze-after') this.frozen = true;
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Server processes

export interface ServerOptions {
  /** The server's identity across restarts (the commit protocol's owner of its in-flight commits). */
  serverId: string;
  /** Extra environment: limits, JOURNAL_LEASE_MS, ... */
  env?: Record<string, string>;
}

/** Keeps a server log line if it is a warning or worse, or not a pino JSON line (a stack trace, a crash). */
function notableServerLine(line: string): boolean {
  try {
    const parsed = JSON.parse(line) as { level?: unknown };
    return typeof parsed.level === 'number' && parsed.level >= 40;
  } catch {
    return true;
  }
}

/** A meds-fhir server as its own OS process (`node --import tsx src/server.ts`), restartable with the same SERVER_ID. */
export class ServerProcess {
  port = 0;
  /** How long each start took to a ready /readyz, in ms. */
  readonly startTimes: number[] = [];
  private process?: ManagedProcess;

  constructor(
    private readonly options: ServerOptions,
    private readonly databaseName: string,
    private readonly mongoUri: () => string,
    private readonly notable: LogLine[],
  ) {}

  get serverId(): string {
    return this.options.serverId;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}/fhir`;
  }

  get alive(): boolean {
    return this.process?.alive ?? false;
  }

  async start(): Promise<void> {
    const started = Date.now();
    this.port = await freePort();
    // A whitelist, not process.env: the jest global setup's MONGODB_URI or a developer's JOURNAL_LEASE_MS
    // must not leak into the server under test.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? REPO_ROOT,
      TMPDIR: process.env.TMPDIR ?? tmpdir(),
      MONGODB_URI: this.mongoUri(),
      MONGODB_DATABASE: this.databaseName,
      PORT: String(this.port),
      HOST: '127.0.0.1',
      LOAD_EXAMPLES: 'false',
      LOG_LEVEL: 'warn',
      SERVER_ID: this.options.serverId,
      PAGE_TOKEN_SECRET,
      AUTH_HS256_SECRET: TEST_SECRET,
      // Background evaluations would add commits of their own to the ones a trial counts and crashes.
      FINDINGS: 'off',
      REQUEST_TIME_BUDGET_MS: String(TEST_TIME_BUDGET_MS),
      MAX_QUEUE_WAIT_MS: String(TEST_QUEUE_WAIT_MS),
      ...this.options.env,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', join('src', 'server.ts')], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const managed = new ManagedProcess(child, `server ${this.options.serverId}`, this.notable, notableServerLine);
    this.process = managed;
    const url = `http://127.0.0.1:${this.port}`;
    try {
      await waitFor(
        `server ${this.options.serverId} ready`,
        READY_TIMEOUT_MS,
        async () => (await fhir(url, 'GET', 'readyz', { timeoutMs: 2_000 })).status === 200,
        () => !managed.alive,
      );
    } catch (error) {
      // Say why: the server's own last words are the useful part of a failed start.
      await managed.kill();
      const said = this.notable.filter((n) => n.source === managed.label).slice(-15);
      throw new Error(`${(error as Error).message}\n${said.map((n) => n.line).join('\n')}`);
    }
    this.startTimes.push(Date.now() - started);
  }

  async kill(): Promise<void> {
    await this.process?.kill();
  }

  async stop(): Promise<void> {
    await this.process?.terminate();
  }
}

// ---------------------------------------------------------------------------------------------------
// The cluster: engine, proxy and servers of one test file

export class FaultCluster {
  readonly servers: ServerProcess[];
  readonly engine: EngineProcess;
  readonly proxy = new WireProxy();
  /** Warnings, errors and non-JSON output of every child, for the test's report. */
  readonly notable: LogLine[] = [];

  private constructor(
    private readonly dataDir: string,
    databaseName: string,
    servers: ServerOptions[],
  ) {
    this.engine = new EngineProcess(dataDir, this.notable);
    this.servers = servers.map((s) => new ServerProcess(s, databaseName, () => this.proxy.uri, this.notable));
  }

  /** Starts the engine on a fresh temporary data directory, the proxy, and every server (in parallel). */
  static async start(databaseName: string, servers: ServerOptions[]): Promise<FaultCluster> {
    const ids = new Set(servers.map((s) => s.serverId));
    if (ids.size !== servers.length) throw new Error('every server process needs a SERVER_ID of its own');
    const dataDir = mkdtempSync(join(tmpdir(), `meds-fhir-fault-${databaseName}-`));
    const cluster = new FaultCluster(dataDir, databaseName, servers);
    try {
      await cluster.engine.start();
      await cluster.proxy.start(cluster.engine.port);
      await Promise.all(cluster.servers.map((s) => s.start()));
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  get server(): ServerProcess {
    return this.servers[0];
  }

  /**
   * The crash: freezes the proxy (if the caller has not already), SIGKILLs the given servers and, if
   * asked, the engine, and waits until they are all gone.
   */
  async crash(options: { servers?: ServerProcess[]; engine: boolean }): Promise<void> {
    this.proxy.freeze();
    const victims = options.servers ?? this.servers;
    await Promise.all([...victims.map((s) => s.kill()), options.engine ? this.engine.kill() : Promise.resolve()]);
    this.proxy.reset();
  }

  /** Brings back whatever is down, engine first, on the same data and with the same SERVER_IDs. */
  async restart(): Promise<void> {
    if (!this.engine.alive) {
      await this.engine.start();
      this.proxy.upstreamPort = this.engine.port;
    }
    await Promise.all(this.servers.filter((s) => !s.alive).map((s) => s.start()));
  }

  /** Stops everything (gracefully, with a bounded grace period) and removes the data directory. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
    await this.proxy.close();
    await this.engine.stop();
    stopWatchdog();
    closeConnections();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** The notable output of the children, one line each, for a test's console report. */
  report(limit = 40): string {
    const lines = this.notable.slice(0, limit).map((n) => `[${n.source}] ${n.line.slice(0, 600)}`);
    const more = this.notable.length > limit ? [`... and ${this.notable.length - limit} more`] : [];
    return [`${this.notable.length} notable log lines`, ...lines, ...more].join('\n');
  }
}
