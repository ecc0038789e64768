import type { OperationOutcome } from '@medplum/fhirtypes';
import { once } from 'node:events';
import { createServer, request as httpRequest, type ClientRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { AdmissionGate, admissionControl, holdTurnUntil, OverloadedError } from '../../src/http/admission';
import { startTestServer, type TestServer } from '../support/server';
import { adminAuthorization } from '../support/tokens';

/**
 * Admission control (issue 11's hostile-input goal): at most MAX_REQUESTS_IN_FLIGHT requests run at
 * once, MAX_REQUESTS_QUEUED wait at most MAX_QUEUE_WAIT_MS for a turn, and any other is answered 503
 * with Retry-After at once, while health checks are answered throughout.
 */

const never = () => {};

describe('AdmissionGate', () => {
  it('runs up to its limit, queues up to its queue, and refuses the next at once', async () => {
    const gate = new AdmissionGate({ maxInFlight: 2, maxQueued: 1, maxQueueWaitMs: 10_000 });
    const first = await gate.enter(never);
    await gate.enter(never);
    let admitted = false;
    const third = gate.enter(never).then((release) => {
      admitted = true;
      return release;
    });
    await expect(gate.enter(never)).rejects.toThrow(/MAX_REQUESTS_QUEUED 1/);
    expect([gate.running, gate.waiting, admitted]).toEqual([2, 1, false]);
    first();
    first(); // giving a turn back twice frees one turn only
    (await third)();
    expect([gate.running, gate.waiting, admitted]).toEqual([1, 0, true]);
  });

  it('admits in arrival order', async () => {
    const gate = new AdmissionGate({ maxInFlight: 1, maxQueued: 10, maxQueueWaitMs: 10_000 });
    const release = await gate.enter(never);
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) =>
      gate.enter(never).then((next) => {
        order.push(n);
        next();
      }),
    );
    release();
    await Promise.all(waiting);
    expect(order).toEqual([1, 2, 3]);
  });

  it('refuses a request that waited MAX_QUEUE_WAIT_MS, and one whose client left gives up its place', async () => {
    const gate = new AdmissionGate({ maxInFlight: 1, maxQueued: 5, maxQueueWaitMs: 50 });
    const release = await gate.enter(never);
    const refused = gate.enter(never);
    await expect(refused).rejects.toBeInstanceOf(OverloadedError);
    await expect(refused).rejects.toThrow(/MAX_QUEUE_WAIT_MS/);
    let leave = never;
    void gate.enter((onGone) => (leave = onGone));
    expect(gate.waiting).toBe(1);
    leave();
    expect(gate.waiting).toBe(0);
    release();
    expect(gate.running).toBe(0);
  });
});

describe('admissionControl', () => {
  it('keeps the turn of a request taken after its answer until the work it left running ends', async () => {
    const gate = new AdmissionGate({ maxInFlight: 1, maxQueued: 1, maxQueueWaitMs: 10_000 });
    let finish = never;
    const leftRunning = new Promise<void>((resolve) => (finish = resolve));
    const app = express();
    app.use(admissionControl(gate));
    app.get('/', (_req, res) => {
      holdTurnUntil(res, leftRunning);
      res.send('answered');
    });
    const http = createServer(app).listen(0, '127.0.0.1');
    await once(http, 'listening');
    try {
      const answer = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`);
      expect(await answer.text()).toBe('answered');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(gate.running).toBe(1);
      finish();
      await leftRunning;
      await new Promise((resolve) => setImmediate(resolve));
      expect(gate.running).toBe(0);
    } finally {
      http.closeAllConnections();
      http.close();
    }
  });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

describe('admission over HTTP', () => {
  let server: TestServer;
  let http: Server;
  let root: string;
  let authorization: string;

  beforeAll(async () => {
    server = await startTestServer(__filename, {
      admission: { maxInFlight: 1, maxQueued: 1, maxQueueWaitMs: 300 },
    });
    http = createServer(server.rawApp).listen(0, '127.0.0.1');
    await once(http, 'listening');
    root = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    authorization = await adminAuthorization();
  });
  afterAll(async () => {
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
    await server.close();
  });

  function get(path: string): Promise<Answer> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${root}${path}`, { headers: { authorization } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: Date.now() - started }),
        );
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** A create whose body never finishes: it holds its turn until the client hangs up. */
  async function holdTurn(): Promise<ClientRequest> {
    const req = httpRequest(`${root}/fhir/Patient`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/fhir+json', 'content-length': '1000' },
    });
    req.on('error', never);
    req.write('{"resourceType":"Patient",');
    await until(() => busy());
    return req;
  }

  const gate = () => server.rawApp.locals.admission as AdmissionGate;
  const busy = () => gate().running > 0;

  async function until(condition: () => boolean): Promise<void> {
    for (let i = 0; i < 100 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  async function patients(): Promise<number> {
    const answer = await get('/fhir/Patient?_summary=count');
    return (JSON.parse(answer.body) as { total: number }).total;
  }

  it('answers 503 transient with Retry-After to a request that found no turn, and health checks meanwhile', async () => {
    const before = await patients();
    const holder = await holdTurn();
    // Give the holder time to be taken in before the others arrive.
    await new Promise((resolve) => setTimeout(resolve, 50));

    const waited = get('/fhir/Patient');
    await until(() => gate().waiting === 1);
    const refusedAtOnce = await get('/fhir/Patient');
    expect(refusedAtOnce.status).toBe(503);
    expect(refusedAtOnce.headers['retry-after']).toBe('1');
    const atOnce = JSON.parse(refusedAtOnce.body) as OperationOutcome;
    expect(atOnce.resourceType).toBe('OperationOutcome');
    expect(atOnce.issue?.[0].code).toBe('transient');
    expect(atOnce.issue?.[0].details?.text).toContain('MAX_REQUESTS_QUEUED');

    const health = await get('/healthz');
    expect(health.status).toBe(200);

    const late = await waited;
    expect(late.status).toBe(503);
    expect(late.headers['retry-after']).toBe('1');
    expect(late.ms).toBeGreaterThanOrEqual(250);
    expect((JSON.parse(late.body) as OperationOutcome).issue?.[0].details?.text).toContain('MAX_QUEUE_WAIT_MS');

    // The holder hangs up: its turn is given back and nothing of it was stored.
    holder.destroy();
    let after = await get('/fhir/Patient?_summary=count');
    for (let i = 0; i < 50 && after.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await get('/fhir/Patient?_summary=count');
    }
    expect(after.status).toBe(200);
    expect((JSON.parse(after.body) as { total: number }).total).toBe(before);
  });

  it('admits a waiting request once the turn before it is done', async () => {
    const holder = await holdTurn();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const waiting = get('/fhir/metadata');
    await new Promise((resolve) => setTimeout(resolve, 50));
    holder.destroy();
    const answer = await waiting;
    expect(answer.status).toBe(200);
  });

  it('counts the wait for a turn in the time budget of a read', async () => {
    const config = server.running.context.config;
    const saved = { budget: config.requestTimeBudgetMs, wait: config.admission.maxQueueWaitMs };
    config.requestTimeBudgetMs = 100;
    config.admission.maxQueueWaitMs = 10_000;
    try {
      const holder = await holdTurn();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const waiting = get('/fhir/Patient');
      await until(() => gate().waiting === 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      holder.destroy();
      const answer = await waiting;
      expect(answer.status).toBe(503);
      expect((JSON.parse(answer.body) as OperationOutcome).issue?.[0].code).toBe('timeout');
    } finally {
      config.requestTimeBudgetMs = saved.budget;
      config.admission.maxQueueWaitMs = saved.wait;
    }
  });
});
