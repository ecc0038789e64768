import type { Bundle, DetectedIssue, MeasureReport, Parameters, ParametersParameter, Task } from '@medplum/fhirtypes';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import {
  describeInBrowser,
  launchChromium,
  PART2_PATIENT,
  PRACTITIONER,
  REVIEW_DATE,
  SCENARIOS,
  startAppServer,
  type AppServer,
} from './support';

// A real server, the examples and a real Chromium: generous, since the machine is shared.
jest.setTimeout(240_000);

const DOCS = join(__dirname, '..', '..', 'docs');
const WINDOW_START = '2025-07-01'; // 12 months ending on REVIEW_DATE, as the page computes it
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let app: AppServer;
let browser: Browser;
let page: Page;
const cspViolations: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  app = await startAppServer(__filename);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  mkdirSync(DOCS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
});

function part(p: ParametersParameter, name: string): ParametersParameter | undefined {
  return p.part?.find((x) => x.name === name);
}

async function review(patient: string): Promise<Parameters> {
  const response = await request(app.admin)
    .get(`/fhir/Patient/${patient}/$medication-review`)
    .query({ date: REVIEW_DATE, periodStart: WINDOW_START, periodEnd: REVIEW_DATE });
  expect(response.status).toBe(200);
  return response.body as Parameters;
}

async function openFindings(): Promise<(DetectedIssue | Task)[]> {
  const team = `Practitioner/${PRACTITIONER}`;
  const issues = await request(app.admin).get(
    `/fhir/DetectedIssue?care-team=${team}&status=preliminary,final&_count=500`,
  );
  const tasks = await request(app.admin).get(
    `/fhir/Task?care-team=${team}&status=requested,accepted,in-progress&_count=500`,
  );
  return [...((issues.body as Bundle).entry ?? []), ...((tasks.body as Bundle).entry ?? [])].map(
    (e) => e.resource as DetectedIssue | Task,
  );
}

async function axeViolations(): Promise<string[]> {
  // Evaluated through the DevTools protocol: the page's CSP (rightly) refuses an injected inline script.
  await page.evaluate(AXE);
  type Result = { violations: { id: string; impact: string; nodes: { html: string }[] }[] };
  const result = await page.evaluate(async () =>
    (globalThis as unknown as { axe: { run(): Promise<Result> } }).axe.run(),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes, first: ${v.nodes[0]?.html.slice(0, 200)})`);
}

describeInBrowser('the clinician page in Chromium', () => {
  it('is served under a strict CSP and signs a practitioner in (development mode)', async () => {
    const response = await page.goto(`${app.url}/app/#/?date=${REVIEW_DATE}`);
    const csp = response?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    await page.getByLabel('Practitioner').selectOption(PRACTITIONER);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Worklist' }).waitFor();
    // Tokens in memory only.
    const stored = await page.evaluate(() => {
      const web = globalThis as unknown as { localStorage: { length: number }; sessionStorage: { length: number } };
      return web.localStorage.length + web.sessionStorage.length;
    });
    expect(stored).toBe(0);
  });

  it('lists the open findings of the scenario patients, by check, and not those of Part 2 records', async () => {
    await page.locator('table.worklist tbody tr').first().waitFor();
    const open = await openFindings();
    const expected = open.filter((f) => !JSON.stringify(f.meta?.security ?? []).includes('42CFRPart2'));
    // The Part 2 patient's findings are on her care team's list, and left out of hers: a search never
    // tells that hidden matches exist (README, Clinician page), so the list says nothing of them.
    expect(open.length).toBeGreaterThan(expected.length);
    expect(await page.locator('.withheld').count()).toBe(0);
    const shown = await page
      .locator('table.worklist tbody tr')
      .evaluateAll((rows) =>
        rows.map((r) => ({ id: r.getAttribute('data-finding'), check: r.getAttribute('data-check') })),
      );
    expect(shown.map((r) => r.id).sort()).toEqual(expected.map((f) => f.id).sort());
    const checks = new Set(shown.map((r) => r.check));
    for (const code of [
      'late-refill',
      'pdc-below-threshold',
      'new-start-no-follow-up',
      'overdue-follow-up',
      'opioid-benzodiazepine',
    ]) {
      expect(checks).toContain(code);
    }
    const patients = await page
      .locator('table.worklist tbody tr td:nth-child(2) a')
      .evaluateAll((links) => links.map((a) => a.getAttribute('href')));
    expect(patients.some((h) => h?.includes(PART2_PATIENT))).toBe(false);
    // Filtering by a check leaves only its rows; the filter's count says how many.
    const lateFilter = page.locator('.filters button[data-check="late-refill"]');
    const count = Number(await lateFilter.locator('.count').textContent());
    await lateFilter.click();
    expect(await page.locator('table.worklist tbody tr').count()).toBe(count);
    await page.locator('.filters button', { hasText: 'All' }).click();
    await page.screenshot({ path: join(DOCS, 'worklist.png'), fullPage: true });
  });

  it('opens a patient from the worklist with the keyboard', async () => {
    const link = page.locator('table.worklist tbody tr[data-check="late-refill"] td:nth-child(2) a').first();
    await link.focus();
    await page.keyboard.press('Enter');
    await page.locator('article.patient h1').waitFor();
    expect(page.url()).toContain('#/patient/late-refill');
  });

  it.each(SCENARIOS)('shows %s with the PDC, gaps and overlaps that $medication-review gives', async (patient) => {
    await page.goto(`${app.url}/app/#/patient/${patient}?date=${REVIEW_DATE}`);
    // This patient's timeline: right after the hash changes, the previous patient's may still show.
    await page.locator(`article.patient[data-patient="${patient}"] #timeline svg`).waitFor();
    const out = await review(patient);
    const adherence = (out.parameter ?? []).filter((p) => p.name === 'adherence');
    expect(adherence.length).toBeGreaterThan(0);
    let marks = 0;
    for (const a of adherence) {
      const code = part(a, 'medicationClass')?.valueCoding?.code as string;
      const pdc = part(a, 'pdc')?.valueDecimal as number;
      const row = page.locator(`table.adherence tr[data-class="${code}"]`);
      expect(await row.locator('td.pdc').getAttribute('data-pdc')).toBe(String(pdc));
      expect(await row.locator('td.pdc').textContent()).toContain(`${(Math.round(pdc * 10000) / 100).toFixed(2)}%`);
      const gaps = (a.part ?? [])
        .filter((p) => p.name === 'gap')
        .map((g) => [part(g, 'start')?.valueDate, part(g, 'end')?.valueDate]);
      const shownGaps = await row
        .locator('li.gap')
        .evaluateAll((items) => items.map((li) => [li.getAttribute('data-start'), li.getAttribute('data-end')]));
      expect(shownGaps).toEqual(gaps);
      const shifted = (a.part ?? [])
        .filter((p) => p.name === 'supply')
        .filter((s) => part(s, 'start')?.valueDate !== part(s, 'fillDate')?.valueDate);
      expect(await row.locator('li.overlap').count()).toBe(shifted.length);
      marks += gaps.length + shifted.length;
    }
    // Every scenario but on-track (on time all year) has a gap or a shifted overlap; the page says which.
    if (patient === 'on-track') {
      expect(marks).toBe(0);
      expect(await page.locator('table.adherence td', { hasText: /^none$/ }).count()).toBe(2 * adherence.length);
    } else {
      expect(marks).toBeGreaterThan(0);
    }
    const drawnGaps = await page.locator('#timeline svg g.gap > *').count();
    const gapCount = adherence.flatMap((a) => (a.part ?? []).filter((p) => p.name === 'gap')).length;
    expect(drawnGaps).toBe(gapCount);
    const fills = await page.locator('#timeline svg g.fill > *').count();
    expect(fills).toBeGreaterThan(0);
    if (patient === 'opioid-benzodiazepine') {
      const mme = (out.parameter ?? []).find((p) => p.name === 'mme');
      expect(await page.locator('p.mme').getAttribute('data-mme')).toBe(
        String(part(mme ?? { name: 'mme' }, 'total')?.valueDecimal),
      );
      expect(await page.locator('.combinations li[data-check="opioid-benzodiazepine"]').count()).toBe(1);
      await page.screenshot({ path: join(DOCS, 'patient.png'), fullPage: true });
    }
    if (patient === 'on-track') await page.screenshot({ path: join(DOCS, 'patient-oud.png'), fullPage: true });
    if (patient === 'late-refill') {
      // A finding's evidence lights up on the timeline.
      const before = await page.locator('#timeline svg g.fill > [stroke="#000000"]').count();
      await page.locator('button.finding[data-check="late-refill"]').click();
      await page.locator('p.evidence').waitFor();
      // The timeline is drawn again after the evidence list shows: wait for the outlined fills.
      const outlined = page.locator('#timeline svg g.fill > [stroke="#000000"]');
      await outlined.first().waitFor();
      expect(before).toBe(0);
      expect(await outlined.count()).toBeGreaterThan(0);
    }
    expect(await page.locator('.withheld').count()).toBe(0);
  });

  it('acknowledges a finding from the worklist through the FHIR API', async () => {
    await page.goto(`${app.url}/app/#/?date=${REVIEW_DATE}`);
    const row = page.locator('table.worklist tbody tr[data-check="late-refill"]').first();
    await row.waitFor();
    const id = (await row.getAttribute('data-finding')) as string;
    expect(await row.locator('td.status').textContent()).toBe('new');
    await row.getByRole('button', { name: /Acknowledge/ }).click();
    await page.locator(`tr[data-finding="${id}"] td.status`, { hasText: 'acknowledged' }).waitFor();
    const stored = await request(app.admin).get(`/fhir/DetectedIssue/${id}`);
    expect(stored.body.status).toBe('final');
    expect(stored.body.mitigation?.[0]?.author?.reference).toBe(`Practitioner/${PRACTITIONER}`);
  });

  it('says that records are withheld for a Part 2 patient the practitioner has no consent for', async () => {
    await page.goto(`${app.url}/app/#/patient/${PART2_PATIENT}?date=${REVIEW_DATE}`);
    await page.locator('article.patient h1').waitFor();
    await page.locator('.withheld').waitFor();
    expect(await page.locator('.withheld').textContent()).toContain('withheld');
    // The administrator (cleared for everything) is not told so: the notice follows the access rules.
    expect((await review(PART2_PATIENT)).parameter?.some((p) => p.name === 'withheld')).toBe(false);
  });

  it('shows the program measures as the practitioner may see them, each bar leading to its patients', async () => {
    await page.goto(`${app.url}/app/#/program?date=${REVIEW_DATE}`);
    await page.locator('section.program').waitFor();
    await page.locator('section[data-measure="pdc-statins"] svg').waitFor();
    // The same report, asked for with the practitioner's own token (a development sign-in).
    const signIn = await request(app.server.rawApp)
      .post('/app/dev/sign-in')
      .set('Content-Type', 'application/json')
      .send({ practitioner: PRACTITIONER });
    const measure = encodeURIComponent('https://meds-fhir.org/fhir/Measure/pdc-statins');
    const answer = await request(app.server.rawApp)
      .get(
        `/fhir/Measure/$evaluate-measure?measure=${measure}&periodStart=2026-01-01&periodEnd=${REVIEW_DATE}&reportType=population`,
      )
      .set('Authorization', `Bearer ${signIn.body.access_token}`);
    expect(answer.status).toBe(200);
    const report = answer.body as MeasureReport;
    const strata =
      report.group?.[0]?.stratifier?.find((s) => s.code?.[0]?.coding?.[0]?.code === 'prescriber')?.stratum ?? [];
    expect(strata.length).toBeGreaterThan(0);
    const shown = await page.locator('section[data-measure="pdc-statins"] .strata li').allTextContents();
    expect(shown).toHaveLength(strata.length);
    for (const s of strata) {
      const rate = `${(((s.measureScore?.value as number) ?? 0) * 100).toFixed(1)}%`;
      expect(shown.some((text) => text.includes(rate))).toBe(true);
    }
    await page.screenshot({ path: join(DOCS, 'program.png'), fullPage: true });
    // A prescriber's bar (its link in the list) opens the patients with a prescription by them.
    await page.locator('section[data-measure="pdc-statins"] .strata a').first().click();
    await page.locator('section.subjects li a').first().waitFor();
    const patients = await page
      .locator('section.subjects li a')
      .evaluateAll((links) => links.map((l) => l.getAttribute('href')));
    expect(patients.some((h) => h?.includes('late-refill'))).toBe(true);
  });

  it('has no serious or critical accessibility violations (axe-core) on its views', async () => {
    const views = [
      `#/?date=${REVIEW_DATE}`,
      `#/patient/opioid-benzodiazepine?date=${REVIEW_DATE}`,
      `#/program?date=${REVIEW_DATE}`,
    ];
    for (const view of views) {
      await page.goto(`${app.url}/app/${view}`);
      await page.locator('main h1').waitFor();
      if (view.includes('patient')) await page.locator('#timeline svg').waitFor();
      expect({ view, violations: await axeViolations() }).toEqual({ view, violations: [] });
    }
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
