import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

/** A running embedded FerretDB process and the URI that reaches it. */
export interface EmbeddedEngine {
  uri: string;
  /** The engine's process id, for measuring its memory beside ours (benchmarks). */
  pid?: number;
  stop(): Promise<void>;
}

export const defaultEngineBinary = join(__dirname, '..', '..', '.cache', 'ferretdb-embedded');

/** Asks the OS for a free loopback port, so parallel servers and test runs never collide. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on the loopback port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * The engine's Go garbage collector, unless the environment sets it: FerretDB allocates a short-lived
 * tree per document it encodes or decodes, and with Go's default (GOGC=100) collecting took about a
 * third of its CPU; at 400 finds cost about half and inserts two thirds (measured in one run), for a
 * larger heap that GOMEMLIMIT bounds (the collector runs harder as the engine nears it).
 */
const ENGINE_GC = { GOGC: '400', GOMEMLIMIT: '768MiB' };

/** How the engine's log line of a start-up migration step begins (its MigrationLogPrefix). */
export const ENGINE_MIGRATION_LOG = 'meds-fhir migration:';

/**
 * Starts FerretDB (SQLite backend) with its files under `dataDir`. The engine binary is built by
 * `npm run engine:build` (scripts/build-engine.mjs); it is not downloaded, because this project must
 * run on machines that reach package registries only.
 */
export async function startEmbeddedEngine(options: {
  dataDir: string;
  port?: number;
  binary?: string;
  log?: (line: string) => void;
  /** How long the engine may go without listening or writing a line before it is taken as stuck. */
  silentMs?: number;
}): Promise<EmbeddedEngine> {
  const binary = options.binary ?? defaultEngineBinary;
  if (!existsSync(binary)) {
    throw new Error(`embedded engine binary not found at ${binary}: run "npm run engine:build" first`);
  }
  const port = options.port ?? (await freePort());
  const child: ChildProcess = spawn(
    binary,
    ['-listen', `127.0.0.1:${port}`, '-dir', join(options.dataDir, 'ferretdb')],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...ENGINE_GC, ...process.env } },
  );
  const log = options.log ?? (() => undefined);
  // A first start after an upgrade may build indexes over existing rows before it listens, one step
  // per table, each saying so first (tools/ferretdb/patch/oddid_medsfhir.go): while the last line it
  // wrote is such a step, it is working, not stuck, however long a large table takes.
  let migrating = false;
  let lastOutput = Date.now();
  const output = (chunk: Buffer) => {
    const text = chunk.toString();
    lastOutput = Date.now();
    migrating = text.trimEnd().split('\n').at(-1)?.includes(ENGINE_MIGRATION_LOG) ?? false;
    log(text);
  };
  child.stdout?.on('data', output);
  child.stderr?.on('data', output);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );

  const started = Date.now();
  const silentMs = options.silentMs ?? 20_000;
  while (!(await canConnect(port))) {
    if (exited) throw new Error('embedded engine exited during start-up');
    if (!migrating && Date.now() - Math.max(started, lastOutput) > silentMs) {
      child.kill('SIGKILL');
      throw new Error(`embedded engine did not start listening (silent for ${silentMs / 1000} s)`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    ...(child.pid !== undefined ? { pid: child.pid } : {}),
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exitPromise;
      clearTimeout(timer);
    },
  };
}
