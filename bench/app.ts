/**
 * The clinician page (issue 14) in headless Chromium against a real server (development mode, the
 * examples loaded, findings on with the test clock on 2026-06-30), plus a generated patient with three
 * years of history (bench/app-patient.ts, about 150 resources):
 *   - cold load: a fresh browser context opens /app/ until the sign-in form is shown;
 *   - worklist: from a patient view to the worklist rendered (its findings searched and drawn);
 *   - patient view: from the worklist to a patient's view complete (review, records, every chart drawn),
 *     over the scenario patients and the three-year patient; the first one also fetches the chart code.
 * Times are measured in the page (performance.now), p50/p95 over --rounds rounds; and the initial
 * download of the built page (dist/app/build-info.json, written by scripts/build-app.mjs).
 * Usage: npx tsx bench/app.ts [--rounds 10] [--screenshot file.png (the three-year patient's view)]
 * MONGODB_URI selects the engine; without it the embedded FerretDB starts under .cache/bench-app.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import type { Page } from 'playwright-core';
import { createServerContext } from '../src/app-context';
import { UNRESTRICTED } from '../src/auth/requester';
import { loadConfig } from '../src/config';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded-engine';
import { loadExamplesIfEmpty } from '../src/examples';
import { createApp } from '../src/http/app';
import { dispatch } from '../src/rest/router';
import { THREE_YEAR_PATIENT, threeYearPatient } from './app-patient';
import { launchChromium } from './chromium';
import { percentile, printTable } from './scale-http';

const args = process.argv.slice(2);
const at = args.indexOf('--rounds');
const rounds = at >= 0 ? Number(args[at + 1]) : 10;
const shotAt = args.indexOf('--screenshot');
const screenshot = shotAt >= 0 ? args[shotAt + 1] : undefined;
const DATE = '2026-06-30';
const SCENARIOS = ['late-refill', 'low-pdc', 'missed-follow-up', 'on-track', 'opioid-benzodiazepine'];
const root = join(__dirname, '..');

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const answer = (await (await fetch(`${url}/readyz`)).json()) as { findingsQueue?: number };
    if (answer.findingsQueue === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('findings queue did not empty');
}

/**
 * Sets the hash and waits, in the page, until a fresh view matching `ready` is complete (no loading
 * placeholder left); ms. A string, because it runs in the browser (this file is compiled without the DOM).
 */
const TIME_VIEW = `async ({ hash, ready, stale }) => {
  document.querySelectorAll(stale).forEach((e) => e.setAttribute('data-stale', ''));
  const t0 = performance.now();
  location.hash = hash;
  await new Promise((resolve, reject) => {
    const check = () => {
      const view = document.querySelector(ready);
      if (view && !view.closest('[data-stale]') && !document.querySelector('main .loading')) resolve();
      else if (performance.now() > t0 + 30000) reject(new Error(hash + ': ' + ready + ' not rendered'));
      else requestAnimationFrame(check);
    };
    check();
  });
  return performance.now() - t0;
}`;

function timeView(page: Page, hash: string, ready: string, stale: string): Promise<number> {
  return page.evaluate(`(${TIME_VIEW})(${JSON.stringify({ hash, ready, stale })})`) as Promise<number>;
}

const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return [
    xs.length,
    percentile(sorted, 50).toFixed(0),
    percentile(sorted, 95).toFixed(0),
    sorted[sorted.length - 1].toFixed(0),
  ];
};

async function main(): Promise<void> {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-app.mjs'), '--quiet'], { stdio: 'inherit' });
  const build = JSON.parse(readFileSync(join(root, 'dist', 'app', 'build-info.json'), 'utf8')) as {
    initialBytes: number;
    initialGzipBytes: number;
    lazyBytes: number;
    lazyGzipBytes: number;
  };
  let uri = process.env.MONGODB_URI;
  let engine: EmbeddedEngine | undefined;
  if (!uri) {
    const dataDir = join(root, '.cache', 'bench-app');
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    engine = await startEmbeddedEngine({ dataDir });
    uri = engine.uri;
  }
  const base = loadConfig({});
  const config = {
    ...base,
    databaseName: 'bench_app',
    dataDir: join(root, '.cache', 'bench-app-data'),
    auth: { mode: 'development' as const, accessTokenSeconds: 3600 },
    findings: { ...base.findings, enabled: true, clock: 'test' as const, delayMs: 20, pollMs: 100 },
  };
  const admin = await MongoClient.connect(uri);
  await admin.db(config.databaseName).dropDatabase();
  await admin.close();
  const running = await createServerContext(config, uri, pino({ level: 'warn' }));
  const server: Server = createApp(running.context).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Written as the server itself (the examples loader does the same): no token to mint for the set-up.
  const asServer = (path: string, body: unknown, query: [string, string][] = []) =>
    dispatch(
      {
        method: 'POST',
        path,
        query,
        headers: {},
        body,
        baseUrl: `${url}/fhir`,
        requestId: 'bench',
        requester: UNRESTRICTED,
      },
      running.context,
    );
  const clock = await asServer('$test-clock', undefined, [['date', DATE]]);
  if (clock.status !== 200) throw new Error(`$test-clock: ${clock.status}`);
  await loadExamplesIfEmpty(running.context);
  const generated = threeYearPatient();
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: generated.map((resource) => ({
      resource,
      request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` },
    })),
  };
  const stored = await asServer('', bundle);
  if (stored.status !== 200)
    throw new Error(`three-year patient: ${stored.status} ${JSON.stringify(stored.body).slice(0, 500)}`);
  await waitReady(url);

  if (!existsSync('/usr/bin/chromium')) throw new Error('bench/app.ts needs Chromium at /usr/bin/chromium');
  const browser = await launchChromium();
  const browserVersion = browser.version();
  const cold: number[] = [];
  for (let i = 0; i < Math.max(3, Math.ceil(rounds / 2)); i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${url}/app/`);
    await page.locator('#practitioner').waitFor();
    cold.push((await page.evaluate('performance.now()')) as number);
    await context.close();
  }
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${url}/app/#/?date=${DATE}`);
  await page.locator('#practitioner').selectOption('example-prescriber');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('table.worklist').waitFor();

  const worklist: number[] = [];
  const scenario: number[] = [];
  const threeYears: number[] = [];
  let firstPatient: number | undefined;
  const PATIENT = 'article.patient #timeline svg';
  for (let r = 0; r < rounds; r++) {
    for (const id of [...SCENARIOS, THREE_YEAR_PATIENT]) {
      const ms = await timeView(page, `#/patient/${id}?date=${DATE}`, PATIENT, 'main > *');
      if (firstPatient === undefined) firstPatient = ms;
      else (id === THREE_YEAR_PATIENT ? threeYears : scenario).push(ms);
      worklist.push(await timeView(page, `#/?date=${DATE}`, 'table.worklist', 'main > *'));
    }
  }
  const resources = generated.length;
  if (screenshot) {
    await timeView(page, `#/patient/${THREE_YEAR_PATIENT}?date=${DATE}&months=36`, PATIENT, 'main > *');
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  await browser.close();
  server.close();
  await running.close();
  await engine?.stop();

  console.log(
    `clinician page, Chromium ${browserVersion} headless; ${rounds} rounds; node ${process.version}, ${cpus().length} cores (shared); engine ${engine ? 'embedded FerretDB' : uri}`,
  );
  printTable(
    ['view', 'samples', 'p50 ms', 'p95 ms', 'max ms'],
    [
      ['cold load to sign-in form', ...stats(cold)],
      ['worklist', ...stats(worklist)],
      ['patient (5 scenario patients)', ...stats(scenario)],
      [`patient (3 years, ${resources} resources)`, ...stats(threeYears)],
      ['first patient view, right after sign-in', 1, (firstPatient ?? NaN).toFixed(0), '', ''],
    ],
  );
  console.log(
    `initial download: ${(build.initialBytes / 1024).toFixed(1)} KB (${(build.initialGzipBytes / 1024).toFixed(1)} KB gzipped); ` +
      `chart code, fetched once the worklist shows: ${(build.lazyBytes / 1024).toFixed(1)} KB (${(build.lazyGzipBytes / 1024).toFixed(1)} KB gzipped)`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
