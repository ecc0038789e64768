import type { DetectedIssue } from '@medplum/fhirtypes';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import { createServerContext, type RunningContext } from '../../src/app-context';
import { loadConfig, type ServerConfig } from '../../src/config';
import { createApp } from '../../src/http/app';
import request from 'supertest';
import { FINDINGS_QUEUE } from '../../src/modules/findings';
import { FINDING_KEY_SYSTEM } from '../../src/modules/findings/model';
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

describe('findings closed by an earlier version', () => {
  it('are closed again as cancelled (the R4 status), once, their closing reason kept, open ones untouched', async () => {
    await running?.close();
    const first = await start({ workers: 0 });
    const app = withAdminToken(createApp(first.context));
    await moveClock(app, '2026-06-30');
    const closedAs = (id: string, status: string, extra: Partial<DetectedIssue> = {}): DetectedIssue =>
      ({
        resourceType: 'DetectedIssue',
        id,
        status,
        identifier: [{ system: FINDING_KEY_SYSTEM, value: `restart-old|late-refill|${id}` }],
        code: { coding: [{ system: 'https://meds-fhir.org/fhir/CodeSystem/medication-checks', code: 'late-refill' }] },
        patient: { reference: 'Patient/restart-late' },
        detail: 'The supply ran out',
        extension: [
          {
            url: 'https://meds-fhir.org/fhir/StructureDefinition/finding-resolution',
            extension: [{ url: 'reason', valueString: 'resolved' }],
          },
        ],
        ...extra,
      }) as unknown as DetectedIssue;
    // As an earlier version stored them (straight through the store: `mitigated` is no longer valid R4).
    await first.context.store.commit(
      [closedAs('old-1', 'mitigated'), closedAs('old-2', 'mitigated'), closedAs('open-1', 'final')].map((resource) => ({
        type: 'DetectedIssue',
        id: resource.id as string,
        method: 'PUT' as const,
        previous: null,
        resource,
      })),
    );
    // A database of an earlier version has never run the pass.
    await first.connection.db.collection('_settings').deleteOne({ _id: 'findings-mitigated-recancelled' as never });
    await first.close();

    running = await start({ workers: 0 });
    expect(await running.findings?.recancelled).toBe(2);
    const next = withAdminToken(createApp(running.context));
    const read = async (id: string) =>
      (await request(next).get(`/fhir/DetectedIssue/${id}`).expect(200)).body as DetectedIssue;
    for (const id of ['old-1', 'old-2']) {
      const issue = await read(id);
      expect(issue.status as string).toBe('cancelled');
      expect(issue.meta?.versionId).toBe('2');
      expect(issue.extension).toEqual(closedAs(id, 'mitigated').extension);
    }
    expect((await read('open-1')).status).toBe('final');
    await running.close();
    running = await start({ workers: 0 });
    expect(await running.findings?.recancelled).toBe(0);
  });
});
