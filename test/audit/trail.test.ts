import type { AuditEvent, Resource } from '@medplum/fhirtypes';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import { AuditLog, AuditUnavailableError } from '../../src/audit/audit-log';
import { newId } from '../../src/store/resource-store';
import { createResource, expectOutcome, FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { auditOf, auditsOf, requestId, requestIdOf, requestorOf } from './support';

/**
 * How the audit trail reaches the database (issue 11): writes durable before their answer, reads in
 * batches (at most a second), nothing lost when a commit fails or the server stops, and no 2xx for
 * an interaction whose audit cannot be stored.
 */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

const event = (label: string): AuditEvent => ({
  resourceType: 'AuditEvent',
  type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
  action: 'R',
  recorded: new Date().toISOString(),
  agent: [{ requestor: true }],
  source: { observer: { display: 'test' } },
  entity: [{ what: { identifier: { value: label } } }],
});

/** The labels of the given events that are stored now. */
async function stored(labels: string[]): Promise<string[]> {
  const docs = await server.running.connection.db
    .collection<{ resource: AuditEvent }>('AuditEvent')
    .find({ 'resource.entity.what.identifier.value': { $in: labels } })
    .toArray();
  return docs.map((d) => requestIdOf(d.resource) || (d.resource.entity?.[0].what?.identifier?.value as string)).sort();
}

/** The real store's append, the way the audit module stores events. */
const commit = (events: AuditEvent[]) => {
  for (const e of events) e.id ??= newId();
  return server.running.context.store.appendImmutable('AuditEvent', events);
};

describe('the audit log', () => {
  it("keeps reads for their batch, commits them with the next write's events, and commits the rest on close", async () => {
    const log = new AuditLog({ store: commit, batchMs: 60_000 });
    const [read1, write, read2] = [requestId('r1'), requestId('w'), requestId('r2')];
    await log.record([event(read1)], { durable: false });
    expect(await stored([read1])).toEqual([]);
    await log.record([event(write)], { durable: true });
    expect(await stored([read1, write])).toEqual([read1, write].sort());
    await log.record([event(read2)], { durable: false });
    expect(await stored([read2])).toEqual([]);
    await log.close();
    expect(await stored([read2])).toEqual([read2]);
    await expect(log.record([event(requestId('late'))], { durable: false })).rejects.toThrow(AuditUnavailableError);
  });

  it('stores each event of a batch tried again once (its answer was lost, the events were stored)', async () => {
    const labels = [requestId('again-1'), requestId('again-2')];
    const batch = labels.map(event);
    await commit(batch);
    await commit([batch[1], event(requestId('again-3')), batch[0]]);
    expect(await stored(labels)).toEqual(labels.sort());
    const copies = await server.running.connection.db
      .collection<{ _id: string }>('AuditEvent')
      .countDocuments({ _id: { $in: batch.map((e) => e.id as string) } });
    expect(copies).toBe(2);
  });

  it('commits a batch of reads by itself once its oldest is due', async () => {
    const log = new AuditLog({ store: commit, batchMs: 20 });
    const read = requestId('due');
    await log.record([event(read)], { durable: false });
    while (!(await stored([read])).length) await new Promise((resolve) => setTimeout(resolve, 20));
    await log.close();
    expect(await stored([read])).toEqual([read]);
  });

  it('loses nothing when a commit fails: a write is refused, the events stay queued and are committed later', async () => {
    let failing = true;
    const errors: unknown[] = [];
    const log = new AuditLog({
      store: (events) => (failing ? Promise.reject(new Error('engine unreachable')) : commit(events)),
      batchMs: 60_000,
      onError: (error) => errors.push(error),
    });
    const [read, write] = [requestId('kept-read'), requestId('kept-write')];
    await log.record([event(read)], { durable: false });
    await expect(log.record([event(write)], { durable: true })).rejects.toThrow('engine unreachable');
    expect(errors).toHaveLength(1);
    expect(log.waiting).toBe(2);
    failing = false;
    await log.flush();
    expect(await stored([read, write])).toEqual([read, write].sort());
    await log.close();
  });

  it('makes every interaction wait for its commit once too many events wait (backpressure)', async () => {
    let commits = 0;
    const log = new AuditLog({ store: (events) => ((commits += 1), commit(events)), batchMs: 60_000, highWater: 2 });
    const labels = [requestId('bp1'), requestId('bp2'), requestId('bp3')];
    await log.record([event(labels[0])], { durable: false });
    await log.record([event(labels[1])], { durable: false });
    expect(commits).toBe(0);
    await log.record([event(labels[2])], { durable: false });
    expect(commits).toBe(1);
    expect(await stored(labels)).toEqual([...labels].sort());
    await log.close();
  });

  it('gives up events that fail every attempt, and says how many', async () => {
    const lost: number[] = [];
    const log = new AuditLog({
      store: () => Promise.reject(new Error('document too large')),
      batchMs: 60_000,
      maxAttempts: 2,
      onLost: (count) => lost.push(count),
    });
    await log.record([event('a'), event('b')], { durable: false });
    await expect(log.flush()).rejects.toThrow(AuditUnavailableError);
    await expect(log.flush()).rejects.toThrow(AuditUnavailableError);
    expect(lost).toEqual([2]);
    expect(log.waiting).toBe(0);
    await log.close();
  });
});

describe('the server and its audit trail', () => {
  it('commits the batch of reads still waiting when it is closed', async () => {
    const file = `${__filename.replace(/\.test\.ts$/, '')}-close.test.ts`;
    const closing = await startTestServer(file);
    const patient = await createResource(closing.app, { resourceType: 'Patient' } as Resource);
    const id = requestId('read-before-close');
    await request(closing.app).get(`/fhir/Patient/${patient.id}`).set('X-Request-Id', id).expect(200);
    await closing.running.close();
    const client = await MongoClient.connect(process.env.MONGODB_URI as string);
    try {
      const db = client.db(closing.running.connection.db.databaseName);
      const found = await db.collection('AuditEvent').countDocuments({ 'resource.entity.what.identifier.value': id });
      expect(found).toBe(1);
      await db.dropDatabase();
    } finally {
      await client.close();
    }
  });

  it('answers 503 rather than unaudited when the audit trail cannot take events', async () => {
    const file = `${__filename.replace(/\.test\.ts$/, '')}-unavailable.test.ts`;
    const broken = await startTestServer(file);
    try {
      const patient = await createResource(broken.app, { resourceType: 'Patient' } as Resource);
      await broken.running.audit.close();
      const read = await request(broken.app).get(`/fhir/Patient/${patient.id}`);
      expectOutcome(read, 503, { code: 'transient' });
      expect(read.body.issue[0].details.text).toMatch(/audit record of this request could not be stored/);
      // A write that changes nothing has no commit of its own to carry its audit.
      expectOutcome(await request(broken.app).delete('/fhir/Patient/never-existed'), 503);
      // A write that changes data carries its audit in its own commit.
      await request(broken.app)
        .post('/fhir/Patient')
        .set('Content-Type', FHIR_JSON)
        .send({ resourceType: 'Patient' })
        .expect(201);
    } finally {
      await broken.close();
    }
  });

  it('stores a write and its AuditEvent in one commit: a commit that fails stores neither, and the failure is audited', async () => {
    const journal = server.running.context.store.journal;
    const id = requestId('commit-fails');
    // Only the write's commit fails: the audit of the failure is a commit of its own.
    journal.beforeDecisionHook = () => {
      journal.beforeDecisionHook = undefined;
      throw new Error('injected: the commit fails before its decision');
    };
    try {
      const response = await request(server.app)
        .put('/fhir/Patient/atomic-audit')
        .set('X-Request-Id', id)
        .set('Content-Type', FHIR_JSON)
        .send({ resourceType: 'Patient', id: 'atomic-audit' });
      expectOutcome(response, 500);
    } finally {
      journal.beforeDecisionHook = undefined;
    }
    await request(server.app).get('/fhir/Patient/atomic-audit').expect(404);
    const [event] = await auditsOf(server, id, { flush: false });
    expect(event.outcome).toBe('8');
    expect(event.entity?.filter((e) => e.role?.code === '4').map((e) => e.what?.reference)).toEqual([
      'Patient/atomic-audit',
    ]);
    expect(await auditsOf(server, id)).toHaveLength(1);
  });

  it('audits with AUTH=off too: audit is not authorization', async () => {
    const file = `${__filename.replace(/\.test\.ts$/, '')}-auth-off.test.ts`;
    const open = await startTestServer(file, { auth: { mode: 'off', accessTokenSeconds: 300 } });
    try {
      const id = requestId('auth-off');
      await request(open.rawApp).get('/fhir/Patient?_count=1').set('X-Request-Id', id).expect(200);
      const event = await auditOf(open, id);
      expect(requestorOf(event)?.who?.identifier?.value).toBe('anonymous (AUTH=off)');
    } finally {
      await open.close();
    }
  });
});
