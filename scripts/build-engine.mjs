// Builds the embedded MongoDB-compatible engine (FerretDB 1.24 on SQLite, tools/ferretdb) with the
// machine's Go toolchain, once: the binary is cached in .cache/ and rebuilt only when its sources change.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'tools', 'ferretdb');
export const engineBinary = join(root, '.cache', 'ferretdb-embedded');

export function buildEngine({ quiet = false } = {}) {
  const inputs = ['main.go', 'go.mod', 'go.sum'].map((f) => statSync(join(source, f)).mtimeMs);
  if (existsSync(engineBinary) && statSync(engineBinary).mtimeMs >= Math.max(...inputs)) {
    return engineBinary;
  }
  if (!quiet) console.error('building the embedded database engine (FerretDB, first run only)...');
  execFileSync('go', ['build', '-trimpath', '-o', engineBinary, '.'], {
    cwd: source,
    stdio: quiet ? 'ignore' : 'inherit',
    env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0' },
  });
  return engineBinary;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  buildEngine();
  console.error(`engine ready: ${engineBinary}`);
}
