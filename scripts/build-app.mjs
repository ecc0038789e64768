// Builds the clinician page (app/) into dist/app: esbuild bundles TypeScript + JSX (Preact) as ES
// modules with code splitting, so the chart library loads only with the views that draw charts; file
// names carry a content hash. index.html is written last, naming the hashed entry and stylesheet, so a
// server never serves a page whose assets are missing. `node scripts/build-app.mjs [--quiet]`.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'app');
const quiet = process.argv.includes('--quiet');

// Built next to the old one, then swapped: a test run or a server reading dist/app meanwhile sees one or the other.
const staging = `${out}.staging-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: 'app/src/main.tsx', styles: 'app/styles.css' },
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  outdir: staging,
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.entries(result.metafile.outputs);
const entryFile = (name) => {
  const found = outputs.find(([file, o]) => o.entryPoint && file.includes(`/${name}-`) && !file.endsWith('.map'));
  if (!found) throw new Error(`esbuild made no ${name} output`);
  return relative(staging, join(root, found[0]));
};
const script = entryFile('main');
const stylesheet = entryFile('styles');
const html = readFileSync(join(root, 'app', 'index.html'), 'utf8')
  .replace('%SCRIPT%', `./${script}`)
  .replace('%STYLESHEET%', `./${stylesheet}`);
writeFileSync(join(staging, 'index.html'), html);
// The stylesheet entry also emits an empty script; the page does not load it.
rmSync(join(staging, stylesheet.replace(/\.css$/, '.js')), { force: true });

// What a first visit downloads: the page, its stylesheet, the entry and the chunks it imports statically.
const initial = new Set(['index.html', stylesheet, script]);
const meta = result.metafile.outputs;
const visit = (file) => {
  for (const imp of meta[file]?.imports ?? []) {
    if (imp.kind !== 'import-statement') continue;
    const name = relative(staging, join(root, imp.path));
    if (!initial.has(name)) {
      initial.add(name);
      visit(imp.path);
    }
  }
};
visit(relative(root, join(staging, script)));
let raw = 0;
let gz = 0;
for (const name of initial) {
  const bytes = readFileSync(join(staging, name));
  raw += bytes.length;
  gz += gzipSync(bytes, { level: 9 }).length;
}
// The rest (the chart code) is fetched later: when the worklist is shown, or by the first chart.
let lazyRaw = 0;
let lazyGz = 0;
for (const [file] of outputs) {
  const name = relative(staging, join(root, file));
  if (initial.has(name) || !name.endsWith('.js') || name === stylesheet.replace(/\.css$/, '.js')) continue;
  const bytes = readFileSync(join(staging, name));
  lazyRaw += bytes.length;
  lazyGz += gzipSync(bytes, { level: 9 }).length;
}
const sizes = {
  initialFiles: [...initial],
  initialBytes: raw,
  initialGzipBytes: gz,
  lazyBytes: lazyRaw,
  lazyGzipBytes: lazyGz,
};
writeFileSync(join(staging, 'build-info.json'), `${JSON.stringify(sizes, null, 2)}\n`);

rmSync(`${out}.old-${process.pid}`, { recursive: true, force: true });
try {
  renameSync(out, `${out}.old-${process.pid}`);
} catch (error) {
  if (error.code !== 'ENOENT') throw error;
}
renameSync(staging, out);
rmSync(`${out}.old-${process.pid}`, { recursive: true, force: true });
if (!quiet) {
  console.log(
    `clinician page built in dist/app: initial download ${(raw / 1024).toFixed(1)} KB, ${(gz / 1024).toFixed(1)} KB gzipped; ` +
      `chart code loaded later ${(lazyRaw / 1024).toFixed(1)} KB, ${(lazyGz / 1024).toFixed(1)} KB gzipped`,
  );
}
