// `npm start`: builds what is missing (the embedded engine, the TypeScript, the clinician page), then
// runs the server with the examples loaded. With MONGODB_URI set, the embedded engine is neither built nor started.
import { execFileSync, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildEngine } from './build-engine.mjs';
import { serverNodeFlags } from './server-node-flags.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (!process.env.MONGODB_URI) buildEngine();
execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
  cwd: root,
  stdio: 'inherit',
});
// The clinician page (/app/), built the way `npm run build` builds it.
execFileSync(process.execPath, [join(root, 'scripts', 'build-app.mjs')], { cwd: root, stdio: 'inherit' });
const child = spawn(process.execPath, [...serverNodeFlags(), join(root, 'dist', 'server.js')], {
  cwd: root,
  stdio: 'inherit',
  env: { LOAD_EXAMPLES: 'true', ...process.env },
});
// Pass stop signals on so the server drains and closes the engine; exit with its code.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code) => process.exit(code ?? 0));
