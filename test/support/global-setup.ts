import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedEngine } from '../../src/db/embedded-engine';

/**
 * One database engine for the whole test run: the embedded FerretDB unless MONGODB_URI points at a
 * real MongoDB. Each test file then uses a database name of its own (see test/support/db.ts).
 */
export default async function globalSetup(): Promise<void> {
  // The clinician page as `npm run build` makes it: the browser tests load it from dist/app.
  execFileSync('node', [join(__dirname, '..', '..', 'scripts', 'build-app.mjs'), '--quiet'], { stdio: 'inherit' });
  if (process.env.MONGODB_URI) return;
  execFileSync('node', [join(__dirname, '..', '..', 'scripts', 'build-engine.mjs')], { stdio: 'inherit' });
  const dataDir = mkdtempSync(join(tmpdir(), 'meds-fhir-test-'));
  // The engine's own output (a Go panic, above all), kept after the run's files are removed.
  const logFile = join(tmpdir(), 'meds-fhir-test-engine.log');
  writeFileSync(logFile, '');
  const engine = await startEmbeddedEngine({ dataDir, log: (line) => appendFileSync(logFile, line) });

  process.env.MONGODB_URI = engine.uri;
  process.env.MEDS_FHIR_TEST_DATA_DIR = dataDir;
  (globalThis as { __ENGINE__?: typeof engine }).__ENGINE__ = engine;
}
