import type { DetectedIssue } from '@medplum/fhirtypes';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import { createServerContext, type RunningContext } from '../../src/app-context';
import { loadConfig, type ServerConfig } from '../../src/config';
import { createApp } from '../../src/http/app';
import { FINDINGS_QUEUE } from '../../src/modules/findings';
import { databaseNameFor } from '../support/server';
import { TEST_AUTH, withAdminToken } from '../support/tokens';
import { within } from '../multiprocess/cluster';
import { findingsOf, findingsOn, moveClock, renamed, sync } from './support';

// Evaluations run in the background; on a loaded 2-core machine a few patients can take a while.
jest.setTimeout(180_000);

const uri = process.env.MONGODB_URI as string;
const base: ServerConfig = {
  ...loadConfig({}),
  databaseName: databaseNameFor(__filename),
  publicBaseUrl: 'http://meds-fhir.test/fhir',
  auth: TEST_AUTH,
  serverId: 'restart-test',
};
const start = (findings: Partial<ServerConfig['findings']>) =>
  createServerContext(
    { ...base, ...findingsOn(findings) },
    uri,
    pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  );

let running: RunningContext | undefined;
beforeAll(async () => {
  const client = await MongoClient.connect(uri);
  await client.db(base.databaseName).dropDatabase();
  await client.close();
});
afterAll(async () => {
  await running?.connection.db.dropDatabase();
  await running?.close();
});

describe('a restart between a write and its evaluation', () => {
  it('loses nothing: the next server evaluates what the stopped one had queued', async () => {
    // No workers: the write's queue entry is committed with it, and nothing works it.
    const first = await start({ workers: 0 });
    const app = withAdminToken(createApp(first.context));
    await moveClock(app, '2026-06-30');
    await sync(app, renamed('late-refill', 'restart-late'));
    expect(await first.connection.db.collection(FINDINGS_QUEUE).countDocuments({ _id: 'restart-late' as never })).toBe(
      1,
    );
    expect(await findingsOf(app, 'DetectedIssue', 'restart-late')).toEqual([]);
    await first.close();

    running = await start({ workers: 2 });
    const next = withAdminToken(createApp(running.context));
    let found: DetectedIssue[] = [];
    await within(120_000, async () => {
      found = (await findingsOf(next, 'DetectedIssue', 'restart-late')) as unknown as DetectedIssue[];
      return found.some((f) => f.code?.coding?.[0].code === 'late-refill');
    });
    expect(found.find((f) => f.code?.coding?.[0].code === 'late-refill')?.identifiedDateTime).toBe('2026-06-30');
  });
});
