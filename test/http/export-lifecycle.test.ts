import type { Bundle, OperationOutcome } from '@medplum/fhirtypes';
import type { Express } from 'express';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import request from 'supertest';
import { createServerContext } from '../../src/app-context';
import type { ServerConfig } from '../../src/config';
import type { ExportJob } from '../../src/export/jobs';
import { createApp } from '../../src/http/app';
import { databaseNameFor, expectOutcome, FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { withAdminToken } from '../support/tokens';
import { jobIdOf, pathOf, ServerPool } from '../support/async-jobs';
import { exported, idsOf, kickOff, manifestOf } from './export-support';

/** What outlives one request of $export: a restart during a job, retention, and clients polling too fast. */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const base = databaseNameFor(__filename).slice(0, 50);
const pool = new ServerPool();

async function start(name: string, overrides: Partial<ServerConfig>): Promise<TestServer> {
  const server = await startTestServer(__filename, { databaseName: `${base}_${name}`, ...overrides });
  pool.servers.push(server);
  return server;
}

afterAll(() => pool.close());

async function loadPrescriptions(app: Express, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, n) => `life-mr-${String(n).padStart(3, '0')}`);
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: ids.map((id) => ({
      resource: {
        resourceType: 'MedicationRequest',
        id,
        status: 'active',
        intent: 'order',
        medicationCodeableConcept: { text: 'buprenorphine' },
        subject: { reference: 'Patient/life-p1' },
      },
      request: { method: 'PUT', url: `MedicationRequest/${id}` },
    })),
  };
  await request(app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle).expect(200);
  return ids;
}

describe('a restart during a job', () => {
  it('resumes on another server from the last recorded chunk, writing each resource once', async () => {
    const first = await start('restart', { serverId: 'export-a', exportFileMaxResources: 5, exportPollSeconds: 1 });
    const ids = await loadPrescriptions(first.app, 30);
    let closing: Promise<void> | undefined;
    // The first server stops right after its first chunk is recorded (as a shutdown does).
    first.running.exports.afterChunk = () => {
      closing ??= first.running.close();
    };
    const status = await kickOff(first.app, '/fhir/$export?_type=MedicationRequest');
    for (let i = 0; !closing && i < 600; i++) await sleep(50);
    expect(closing).toBeDefined();
    await closing;

    const config = { ...first.running.context.config, serverId: 'export-b' };
    const client = await MongoClient.connect(process.env.MONGODB_URI as string);
    try {
      const db = client.db(config.databaseName);
      const job = (await db.collection<ExportJob>('_export_jobs').findOne({ _id: jobIdOf(status) })) as ExportJob;
      expect(job.state).toBe('in-progress');
      expect(job.runner?.server).toBe('export-a');
      expect(job.done).toBe(5);
      // As if the first server had stopped between writing its next chunk and recording it.
      const { file, chunk } = job.cursor as NonNullable<ExportJob['cursor']>;
      await db.collection('_export_chunks').insertOne({
        _id: `${job._id}/${file}/${chunk}` as never,
        job: job._id,
        file,
        chunk,
        data: '{"not":"exported"}\n',
      });
    } finally {
      await client.close();
    }

    const second = await createServerContext(config, process.env.MONGODB_URI as string, pino({ level: 'silent' }));
    pool.contexts.push(second);
    const app = withAdminToken(createApp(second.context));
    const manifest = await manifestOf(app, status);
    expect(manifest.output.map((f) => f.count)).toEqual([5, 5, 5, 5, 5, 5]);
    const files = await exported(app, manifest);
    const exportedIds = idsOf(files.get('MedicationRequest'));
    expect(exportedIds).toEqual(ids);
    expect(new Set(exportedIds).size).toBe(30);
  });
});

describe('retention', () => {
  it('deletes an export, its status and its files once EXPORT_RETENTION_SECONDS have passed', async () => {
    // Long enough that the poll after completion (at most Retry-After later) still finds it, on a busy machine too.
    const server = await start('retention', { exportRetentionSeconds: 5, exportPollSeconds: 1 });
    await loadPrescriptions(server.app, 2);
    const status = await kickOff(server.app, '/fhir/$export?_type=MedicationRequest');
    const manifest = await manifestOf(server.app, status);
    const url = pathOf(manifest.output[0].url);
    await request(server.app).get(url).expect(200);
    const db = server.running.connection.db;
    const job = jobIdOf(status);
    // Gone for clients once expired, and from the database at the next sweep.
    for (let i = 0; i < 600; i++) {
      const left = await db.collection('_export_chunks').countDocuments({ job });
      if (left === 0 && !(await db.collection('_export_jobs').findOne({ _id: job as never }))) break;
      await sleep(100);
    }
    expectOutcome(await request(server.app).get(status), 404);
    expectOutcome(await request(server.app).get(url), 404);
    expect(await db.collection('_export_chunks').countDocuments({ job })).toBe(0);
    expect(await db.collection('_export_jobs').countDocuments({ _id: job as never })).toBe(0);
  });
});

describe('polling', () => {
  it('answers a poll sooner than Retry-After with 429, and cancels a job not yet started', async () => {
    const server = await start('polling', { exportPollSeconds: 60 });
    // No worker: the job stays accepted, so that its status is polled while it runs.
    await server.running.exports.close();
    const status = await kickOff(server.app, '/fhir/$export?_type=Patient');
    const first = await request(server.app).get(status);
    expect(first.status).toBe(202);
    expect(first.headers['retry-after']).toBe('60');
    expect(first.headers['x-progress']).toBeTruthy();
    const second = await request(server.app).get(status);
    expectOutcome(second, 429, { code: 'throttled' });
    expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(second.headers['retry-after'])).toBeLessThanOrEqual(60);

    const cancelled = await request(server.app).delete(status);
    expect(cancelled.status).toBe(202);
    expect((cancelled.body as OperationOutcome).resourceType).toBe('OperationOutcome');
    expectOutcome(await request(server.app).get(status), 404);
    expectOutcome(await request(server.app).delete(status), 404);
  });
});
