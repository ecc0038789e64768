import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedEngine } from '../../src/db/embedded-engine';

// The start-up wait of the embedded engine, driven by a stand-in process that speaks the engine's
// command line (-listen host:port): a first start after an upgrade builds indexes over existing rows
// before listening (tools/ferretdb/patch/oddid_medsfhir.go), which on a large database takes far
// longer than a normal start, and must not be taken for a stuck engine.
const dir = mkdtempSync(join(tmpdir(), 'meds-fhir-engine-start-'));

/** A stand-in engine: writes each line and waits its milliseconds, then listens on the -listen port. */
function standIn(name: string, steps: [line: string, waitMs: number][]): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    `#!/usr/bin/env node
const net = require('node:net');
const [host, port] = process.argv[process.argv.indexOf('-listen') + 1].split(':');
const steps = ${JSON.stringify(steps)};
let i = 0;
const next = () => {
  if (i < steps.length) { const [line, wait] = steps[i++]; process.stderr.write(line + '\\n'); setTimeout(next, wait); return; }
  net.createServer((s) => s.destroy()).listen(Number(port), host);
};
next();
process.on('SIGTERM', () => process.exit(0));
`,
  );
  chmodSync(file, 0o755);
  return file;
}

// Longer than a stand-in (a Node.js process) takes to start on a loaded machine, which counts as
// silence too: at 0.3 s, a CI run killed the migrating stand-in before its first line.
const SILENT_MS = 1500;

describe('starting the embedded engine', () => {
  it('waits for an engine that says it is migrating, however long it stays silent meanwhile', async () => {
    // Each migration step is silent for longer than allowed; the lines between them are quick.
    const binary = standIn('migrating', [
      ['INFO starting', 100],
      ['INFO meds-fhir migration: building an index (collection=Observation)', 2500],
      ['INFO meds-fhir migration: building an index (collection=Patient)', 2500],
      ['INFO listening', 0],
    ]);
    const engine = await startEmbeddedEngine({ dataDir: dir, binary, silentMs: SILENT_MS });
    expect(engine.uri).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\/$/);
    await engine.stop();
  });

  it('gives up on an engine silent for longer than allowed, when it is not migrating', async () => {
    const binary = standIn('stuck', [
      ['INFO starting', 100],
      ['INFO still starting', 2500],
    ]);
    await expect(startEmbeddedEngine({ dataDir: dir, binary, silentMs: SILENT_MS })).rejects.toThrow(
      `did not start listening (silent for ${SILENT_MS / 1000} s)`,
    );
  });
});
