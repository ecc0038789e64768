import pino from 'pino';
import { loadExamplesIfEmpty } from '../../src/examples';
import { loadConfig } from '../../src/config';
import { startTestServer, type TestServer } from '../support/server';
import { findingsOf, settled } from './support';

// Evaluations run in the background; on a loaded 2-core machine a few patients can take a while.
jest.setTimeout(180_000);

let server: TestServer;
beforeAll(async () => {
  // As `npm start` runs: the system clock, the examples loaded at start.
  server = await startTestServer(
    __filename,
    { findings: { ...loadConfig({}).findings, enabled: true, pollMs: 100 } },
    { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) },
  );
  await loadExamplesIfEmpty(server.running.context);
});
afterAll(async () => server.close());

describe('the scenario patients of examples/scenarios', () => {
  it.each(['late-refill', 'low-pdc', 'missed-follow-up', 'on-track', 'opioid-benzodiazepine'])(
    '%s has standing findings once the examples are loaded',
    async (patient) => {
      await settled(server.app, 60_000);
      const findings = [
        ...(await findingsOf(server.app, 'DetectedIssue', patient)),
        ...(await findingsOf(server.app, 'Task', patient)),
      ];
      expect(findings.length).toBeGreaterThan(0);
    },
  );
});
