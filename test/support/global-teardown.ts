import { rmSync } from 'node:fs';
import type { EmbeddedEngine } from '../../src/db/embedded-engine';

export default async function globalTeardown(): Promise<void> {
  const engine = (globalThis as { __ENGINE__?: EmbeddedEngine }).__ENGINE__;
  if (engine) await engine.stop();
  const dataDir = process.env.MEDS_FHIR_TEST_DATA_DIR;
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
