import type { Resource } from '@medplum/fhirtypes';
import express, { type Express } from 'express';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { CHROMIUM, launchChromium } from '../../bench/chromium';
import { loadOrCreateDevSecret } from '../../src/auth/dev-secret';
import { ACT_CODE } from '../../src/auth/labels';
import { loadExamplesIfEmpty } from '../../src/examples';
import { findingsOn, moveClock, renamed, settled, sync } from '../findings/support';
import { startTestServer, type TestServer } from '../support/server';
import { ADMIN_CLAIMS, tokenFor } from '../support/tokens';

/** Debian's chromium, installed by .ci/run: the browser tests need a real browser and download none. */
export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`SKIPPED: the browser tests need Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`);
}
export const describeInBrowser = haveChromium ? describe : describe.skip;

/** The scenario patients (examples/scenarios) and the date their README reviews them on. */
export const SCENARIOS = ['late-refill', 'low-pdc', 'missed-follow-up', 'on-track', 'opioid-benzodiazepine'];
export const REVIEW_DATE = '2026-06-30';
export const PRACTITIONER = 'example-prescriber';
/** An OUD patient of the same practitioner whose treatment records are Part 2, with no consent. */
export const PART2_PATIENT = 'p2-on-track';
export const PART2_LATE_PATIENT = 'p2-late-refill';

export interface AppServer {
  server: TestServer;
  /** The app with an administrator's token (signed with development mode's secret) on requests without one. */
  admin: Express;
  url: string;
  close(): Promise<void>;
}

/** `app` with `authorization` on every request that has none. */
export function withToken(app: Express, authorization: string): Express {
  const wrapper = express();
  wrapper.use((req, _res, next) => {
    req.headers.authorization ??= authorization;
    next();
  }, app);
  return wrapper;
}

/**
 * A server as `npm start` runs it (development mode, the examples loaded, findings on), listening on a
 * local port for the browser, with its findings clock on the scenarios' review date.
 */
export async function startAppServer(testFile: string): Promise<AppServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'meds-fhir-app-'));
  const server = await startTestServer(
    testFile,
    { auth: { mode: 'development', accessTokenSeconds: 300 }, dataDir, ...findingsOn() },
    { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) },
  );
  const admin = withToken(server.rawApp, `Bearer ${await tokenFor(ADMIN_CLAIMS, loadOrCreateDevSecret(dataDir))}`);
  await moveClock(admin, REVIEW_DATE);
  await loadExamplesIfEmpty(server.running.context);
  await sync(admin, part2Patient('on-track', PART2_PATIENT));
  // A Part 2 patient with a finding on the practitioner's worklist, which she may not see.
  await sync(admin, part2Patient('late-refill', PART2_LATE_PATIENT));
  await settled(admin);
  const http: Server = createServer(server.rawApp);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    server,
    admin,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await server.close();
    },
  };
}

/** A scenario patient under another id, its treatment records labelled Part 2, on the practitioner's care team. */
function part2Patient(scenario: string, patient: string): Resource[] {
  const part2 = { meta: { security: [{ system: ACT_CODE, code: '42CFRPart2' }] } };
  return [
    ...renamed(scenario, patient).map((r) =>
      ['MedicationDispense', 'MedicationRequest', 'Condition', 'Observation'].includes(r.resourceType)
        ? ({ ...r, ...part2 } as Resource)
        : r,
    ),
    {
      resourceType: 'CareTeam',
      id: `team-${patient}`,
      status: 'active',
      subject: { reference: `Patient/${patient}` },
      participant: [{ member: { reference: `Practitioner/${PRACTITIONER}` } }],
    } as Resource,
  ];
}

export { CHROMIUM, launchChromium };
