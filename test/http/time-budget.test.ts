import type { Bundle, OperationOutcome, Patient } from '@medplum/fhirtypes';
import { MongoClient } from 'mongodb';
import { Writable } from 'node:stream';
import pino from 'pino';
import request from 'supertest';
import { TimeBudgetError } from '../../src/store/read-view';
import { ResourceStore } from '../../src/store/resource-store';
import { databaseNameFor, FHIR_JSON, startTestServer, type TestServer } from '../support/server';

/**
 * REQUEST_TIME_BUDGET_MS (issue 11's hostile-input goal): a read-only interaction that runs out of
 * its budget is answered 503 `timeout` at once, and writes are never cut short.
 */

const PATIENTS = 300;

function patient(i: number): Patient {
  return {
    resourceType: 'Patient',
    name: [{ family: `Budget${i}`, given: ['Ana', 'Maria'] }],
    birthDate: '1980-01-01',
  };
}

function transaction(count: number): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: Array.from({ length: count }, (_, i) => ({
      resource: patient(i),
      request: { method: 'POST', url: 'Patient' },
    })),
  };
}

// An unindexed scan of every Patient and its count: more than a millisecond on any machine.
const SCAN = '/fhir/Patient?name:contains=zz&_total=accurate';

describe('a read-only request past its time budget', () => {
  let server: TestServer;
  const budget = (ms: number) => (server.running.context.config.requestTimeBudgetMs = ms);
  const logged: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logged.push(JSON.parse(line));
        done();
      },
    });
    server = await startTestServer(__filename, {}, { logger: pino({ level: 'info' }, sink) });
    const stored = await request(server.app).post('/fhir').set('Content-Type', FHIR_JSON).send(transaction(PATIENTS));
    expect(stored.status).toBe(200);
  });
  afterAll(() => server.close());

  it('is answered 503 timeout with an OperationOutcome naming the setting', async () => {
    budget(1);
    const response = await request(server.app).get(SCAN);
    expect(response.status).toBe(503);
    const outcome = response.body as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue?.[0].code).toBe('timeout');
    expect(outcome.issue?.[0].details?.text).toContain('REQUEST_TIME_BUDGET_MS');
  });

  it('is logged as a warning with its IssueType, not as an unexpected error', async () => {
    budget(1);
    logged.length = 0;
    expect((await request(server.app).get(SCAN)).status).toBe(503);
    // pino-http writes the request's own line once the answer is sent.
    for (let i = 0; i < 50 && !logged.some((l) => l.msg === 'request refused for now'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const refused = logged.filter((l) => l.msg === 'request refused for now');
    expect(refused.map((l) => [l.level, l.status, l.code])).toEqual([[40, 503, 'timeout']]);
    expect(logged.some((l) => l.msg === 'unexpected error')).toBe(false);
  });

  it('is answered in full without a budget (0)', async () => {
    budget(0);
    const response = await request(server.app).get(SCAN);
    expect(response.status).toBe(200);
    expect((response.body as Bundle).total).toBe(0);
    const all = await request(server.app).get('/fhir/Patient?_summary=count');
    expect((all.body as Bundle).total).toBe(PATIENTS);
  });

  it('applies to the entries of a batch, each answering 503 in its own entry', async () => {
    budget(1);
    const batch: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [0, 1, 2].map(() => ({ request: { method: 'GET', url: SCAN.replace('/fhir/', '') } })),
    };
    const response = await request(server.app).post('/fhir').set('Content-Type', FHIR_JSON).send(batch);
    expect(response.status).toBe(200);
    const entries = (response.body as Bundle).entry ?? [];
    expect(entries.map((e) => e.response?.status)).toEqual(['503', '503', '503']);
    expect(entries[2].response?.outcome?.issue?.[0].code).toBe('timeout');
  });

  it('does not cut writes short: a create under the same budget is stored', async () => {
    budget(1);
    const created = await request(server.app).post('/fhir/Patient').set('Content-Type', FHIR_JSON).send(patient(-1));
    expect(created.status).toBe(201);
    budget(0);
    const read = await request(server.app).get(`/fhir/Patient/${(created.body as Patient).id}`);
    expect(read.status).toBe(200);
    expect((read.body as Patient).name?.[0].family).toBe('Budget-1');
  });
});

const ROWS = 20_000;

describe('ReadView with a deadline', () => {
  let client: MongoClient;
  let store: ResourceStore;
  const dbName = databaseNameFor(`${__filename}-view`);

  beforeAll(async () => {
    client = await MongoClient.connect(process.env.MONGODB_URI as string);
    await client.db(dbName).dropDatabase();
    store = new ResourceStore(client.db(dbName), { serverId: 'time-budget-test' });
    await client
      .db(dbName)
      .collection('Scratch')
      .insertMany(Array.from({ length: ROWS }, (_, i) => ({ _id: `s${i}` as never, text: `row ${i} of the scan` })));
  });
  afterAll(async () => {
    await store.stop();
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  it('starts no read once the deadline has passed', async () => {
    const view = store.readView(undefined, Date.now() - 1);
    await expect(view.find('Scratch', {})).rejects.toBeInstanceOf(TimeBudgetError);
    await expect(view.count('Scratch', {})).rejects.toBeInstanceOf(TimeBudgetError);
    await expect(view.findOne<{ _id: string }>('Scratch', { _id: 's1' })).rejects.toBeInstanceOf(TimeBudgetError);
  });

  it('reads as usual while the budget lasts', async () => {
    const view = store.readView(undefined, Date.now() + 60_000);
    expect(await view.count('Scratch', {})).toBe(ROWS);
    expect(await view.findOne<{ _id: string }>('Scratch', { _id: 's1' })).toMatchObject({ text: 'row 1 of the scan' });
  });

  it('gives up a read still running when the budget ends', async () => {
    // An unindexed regular expression over 20,000 documents: far more than 5 ms.
    const abandoned: Promise<unknown>[] = [];
    const view = store.readView(undefined, Date.now() + 5, (query) => abandoned.push(query));
    await expect(view.count('Scratch', { text: { $regex: 'never there' } })).rejects.toBeInstanceOf(TimeBudgetError);
    // The query left running is handed over (the request's turn waits for it), and it does end.
    expect(abandoned).toHaveLength(1);
    await abandoned[0];
    // The engine's answer, when it comes, is dropped: the next view reads on as usual.
    expect(await store.readView(undefined, Date.now() + 60_000).count('Scratch', { text: { $regex: 'row 1 ' } })).toBe(
      1,
    );
  });
});
