import type { MeasureReport, Resource } from '@medplum/fhirtypes';
import type { Express } from 'express';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import request from 'supertest';
import { createServerContext } from '../../src/app-context';
import type { ServerConfig } from '../../src/config';
import { createApp } from '../../src/http/app';
import type { MeasureJob } from '../../src/measures/jobs';
import { jobIdOf, pathOf, ServerPool } from '../support/async-jobs';
import { countsOf, PERIOD, patientRecords, type PatientSpec } from '../support/measures';
import { databaseNameFor, expectOutcome, putAll, startTestServer, type TestServer } from '../support/server';
import { tokenFor, withAdminToken } from '../support/tokens';

/** Asynchronous $evaluate-measure: kick-off, progress, the report, cancel, and a restart during a job. */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const base = databaseNameFor(__filename).slice(0, 50);
const pool = new ServerPool();

/** 250 patients (three batches of the cursor): even ones adherent to statins, odd ones not. */
const PATIENTS: PatientSpec[] = Array.from({ length: 250 }, (_, i) => ({
  id: `async-${String(i).padStart(3, '0')}`,
  fills:
    i % 2 === 0
      ? [
          { drug: 'atorvastatin', day: 0, days: 200 },
          { drug: 'atorvastatin', day: 200, days: 165 },
        ]
      : [
          { drug: 'atorvastatin', day: 0, days: 30 },
          { drug: 'atorvastatin', day: 100, days: 30 },
        ],
}));
const EXPECTED = { 'initial-population': 250, denominator: 250, 'denominator-exclusion': 0, numerator: 125 };
const EVALUATE = `/fhir/Measure/pdc-statins/$evaluate-measure?periodStart=${PERIOD.start}&periodEnd=${PERIOD.end}`;

async function start(name: string, serverId: string, overrides: Partial<ServerConfig> = {}): Promise<TestServer> {
  const server = await startTestServer(__filename, {
    databaseName: `${base}_${name}`,
    serverId,
    exportPollSeconds: 1,
    ...overrides,
  });
  pool.servers.push(server);
  const resources: Resource[] = PATIENTS.flatMap(patientRecords);
  for (let i = 0; i < resources.length; i += 250) await putAll(server.app, resources.slice(i, i + 250));
  return server;
}

afterAll(() => pool.close());

async function kickOff(app: Express): Promise<string> {
  const response = await request(app).get(EVALUATE).set('Prefer', 'respond-async');
  expect(response.status).toBe(202);
  expect(response.body.resourceType).toBe('OperationOutcome');
  return pathOf(response.headers['content-location'] as string);
}

async function reportOf(app: Express, status: string): Promise<MeasureReport> {
  for (let i = 0; i < 1200; i++) {
    const response = await request(app).get(status);
    if (response.status === 200) return response.body as MeasureReport;
    if (response.status !== 202) throw new Error(`status ${response.status}: ${JSON.stringify(response.body)}`);
    await sleep(Number(response.headers['retry-after']) * 1000 + 20);
  }
  throw new Error('the evaluation did not finish');
}

/** A gate the job waits at after each recorded batch, until the test opens it. */
function gate(server: TestServer) {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let reached!: () => void;
  const waiting = new Promise<void>((resolve) => (reached = resolve));
  server.running.measures.afterBatch = async () => {
    reached();
    await opened;
  };
  return { waiting, open };
}

describe('the asynchronous protocol', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await start('protocol', 'measure-p');
  });

  it('answers 202 with X-Progress while running, then the MeasureReport the synchronous call gives', async () => {
    const { waiting, open } = gate(server);
    const status = await kickOff(server.app);
    await waiting;
    const running = await request(server.app).get(status);
    expect(running.status).toBe(202);
    expect(running.headers['x-progress']).toBe('100 of 250 patients evaluated');
    expect(running.headers['retry-after']).toBe('1');
    // Sooner than Retry-After: throttled, as a bulk data status poll is (the job is untouched).
    const early = await request(server.app).get(status);
    expectOutcome(early, 429, { code: 'throttled' });
    expect(early.headers['retry-after']).toBe('1');
    open();
    await sleep(1020);
    const report = await reportOf(server.app, status);
    expect(report).toMatchObject({ resourceType: 'MeasureReport', status: 'complete', type: 'summary' });
    expect(countsOf(report)).toEqual(EXPECTED);
    server.running.measures.afterBatch = undefined;
    const sync = await request(server.app).get(EVALUATE);
    expect({ ...sync.body, date: undefined }).toEqual({ ...report, date: undefined });
  });

  it('lets no other requester poll the job', async () => {
    const status = await kickOff(server.app);
    const other = `Bearer ${await tokenFor({ sub: 'someone-else', scope: 'system/*.rs', clearance: ['*'] })}`;
    expectOutcome(await request(server.app).get(status).set('Authorization', other), 404);
    await reportOf(server.app, status);
  });

  it('cancels a running job with DELETE', async () => {
    const { waiting, open } = gate(server);
    const status = await kickOff(server.app);
    await waiting;
    const cancelled = await request(server.app).delete(status);
    expect(cancelled.status).toBe(202);
    open();
    expectOutcome(await request(server.app).get(status), 404);
    const db = server.running.connection.db;
    let job: MeasureJob | null = null;
    for (let i = 0; i < 100; i++) {
      job = await db.collection<MeasureJob>('_measure_jobs').findOne({ _id: jobIdOf(status) });
      if (!job || job.state === 'cancelled') break;
      await sleep(50);
    }
    // Cancelled (and its report never made), or already swept away.
    expect(job === null || (job.state === 'cancelled' && job.report === undefined)).toBe(true);
    server.running.measures.afterBatch = undefined;
  });

  it('refuses bad parameters before accepting a job', async () => {
    const response = await request(server.app)
      .get('/fhir/Measure/pdc-statins/$evaluate-measure?periodStart=2025-13-01&periodEnd=2025-12-31')
      .set('Prefer', 'respond-async');
    expectOutcome(response, 400);
    expect(response.body.issue[0].expression).toEqual(['periodStart']);
    expect(await server.running.connection.db.collection('_measure_jobs').countDocuments({ state: 'accepted' })).toBe(
      0,
    );
  });
});

describe('retention', () => {
  it('forgets a finished evaluation and its report once EXPORT_RETENTION_SECONDS have passed', async () => {
    // Long enough that the poll after completion (at most Retry-After later) still finds it, on a busy machine too.
    const server = await start('retention', 'measure-r', { exportRetentionSeconds: 4 });
    const status = await kickOff(server.app);
    const report = await reportOf(server.app, status);
    expect(countsOf(report)).toEqual(EXPECTED);
    const db = server.running.connection.db;
    const job = jobIdOf(status);
    // Gone for clients once expired, and from the database at the next sweep.
    for (let i = 0; i < 600 && (await db.collection('_measure_jobs').countDocuments({ _id: job as never })); i++) {
      await sleep(100);
    }
    expect(await db.collection('_measure_jobs').countDocuments({ _id: job as never })).toBe(0);
    expectOutcome(await request(server.app).get(status), 404);
  });
});

describe('a restart during a job', () => {
  it('resumes on another server from the last recorded batch, counting each patient once', async () => {
    const first = await start('restart', 'measure-a');
    let closing: Promise<void> | undefined;
    // The first server stops right after its first batch is recorded (as a shutdown does).
    first.running.measures.afterBatch = () => {
      closing ??= first.running.close();
    };
    const status = await kickOff(first.app);
    for (let i = 0; !closing && i < 600; i++) await sleep(50);
    expect(closing).toBeDefined();
    await closing;

    const config = { ...first.running.context.config, serverId: 'measure-b' };
    const client = await MongoClient.connect(process.env.MONGODB_URI as string);
    try {
      const job = await client
        .db(config.databaseName)
        .collection<MeasureJob>('_measure_jobs')
        .findOne({ _id: jobIdOf(status) });
      expect(job?.state).toBe('in-progress');
      expect(job?.runner?.server).toBe('measure-a');
      expect(job?.checkpoint?.after).toBe('async-099');
      expect(job?.checkpoint?.tally.evaluated).toBe(100);
    } finally {
      await client.close();
    }

    const second = await createServerContext(config, process.env.MONGODB_URI as string, pino({ level: 'silent' }));
    pool.contexts.push(second);
    const app = withAdminToken(createApp(second.context));
    const report = await reportOf(app, status);
    expect(countsOf(report)).toEqual(EXPECTED);
  });
});
