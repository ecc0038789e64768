import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { Express } from 'express';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import request from 'supertest';
import { createServerContext, RunningContext } from '../../src/app-context';
import { loadConfig, ServerConfig } from '../../src/config';
import { createApp } from '../../src/http/app';
import { TEST_AUTH, withAdminToken } from './tokens';

export interface TestServer {
  /** The app as an administrator reaches it: requests without an Authorization header get ADMIN_CLAIMS' token. */
  app: Express;
  /** The app exactly as a client reaches it (no token added). */
  rawApp: Express;
  running: RunningContext;
  close(): Promise<void>;
}

/**
 * Every read in the tests runs with a time budget, as in production, but one a loaded test machine
 * never reaches: the budget itself is tested with small values of its own (test/http/time-budget.test.ts).
 */
export const TEST_TIME_BUDGET_MS = 30_000;

/**
 * The same for the wait for a turn: the production bound on requests in flight, with a wait a loaded
 * test machine never reaches (the queue's own bounds are tested in test/http/admission.test.ts).
 */
export const TEST_QUEUE_WAIT_MS = 30_000;

/** A database name per test file, so files run in parallel without clearing each other's data. */
export function databaseNameFor(testFile: string): string {
  const base = testFile.replace(/^.*[\\/]/, '').replace(/\.test\.ts$/, '');
  return `t_${base.replace(/[^A-Za-z0-9]/g, '_')}_${process.pid}`.slice(0, 60);
}

/** The real Express app on the real database engine the global setup started (or MONGODB_URI). */
export async function startTestServer(
  testFile: string,
  overrides: Partial<ServerConfig> = {},
  options: { logger?: pino.Logger } = {},
): Promise<TestServer> {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error('MONGODB_URI is not set: the jest global setup starts the database engine');
  // A fixed base URL: supertest listens on a new port per request, which would change every link.
  const config = {
    ...loadConfig({}),
    databaseName: databaseNameFor(testFile),
    publicBaseUrl: 'http://meds-fhir.test/fhir',
    auth: TEST_AUTH,
    // Off unless a test asks for it: background findings (and their audit) would change what other tests count.
    findings: { ...loadConfig({}).findings, enabled: false },
    requestTimeBudgetMs: TEST_TIME_BUDGET_MS,
    admission: { ...loadConfig({}).admission, maxQueueWaitMs: TEST_QUEUE_WAIT_MS },
    ...overrides,
  };
  // Cleared before the server starts, since start-up itself stores things (the shipped profiles).
  const client = await MongoClient.connect(uri);
  await client.db(config.databaseName).dropDatabase();
  await client.close();
  const running = await createServerContext(config, uri, options.logger ?? pino({ level: 'silent' }));
  const rawApp = createApp(running.context);
  return {
    app: withAdminToken(rawApp),
    rawApp,
    running,
    close: async () => {
      await running.connection.db.dropDatabase();
      await running.close();
    },
  };
}

export const FHIR_JSON = 'application/fhir+json';

export async function createResource<T extends Resource>(app: Express, resource: T): Promise<T> {
  const response = await request(app)
    .post(`/fhir/${resource.resourceType}`)
    .set('Content-Type', FHIR_JSON)
    .send(resource);
  if (response.status !== 201) throw new Error(`create failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as T;
}

/** Stores resources with their ids in one transaction of PUTs (as the app's requester: the administrator). */
export async function putAll(app: Express, resources: Resource[]): Promise<void> {
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: resources.map((resource) => ({
      resource,
      request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` },
    })),
  };
  const response = await request(app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle);
  if (response.status !== 200) throw new Error(`transaction: ${response.status} ${JSON.stringify(response.body)}`);
}

/** Everything stored for a resource: current state and its whole history, to prove a rejected request changed nothing. */
export async function snapshot(app: Express, type: string, id: string): Promise<unknown> {
  const current = await request(app).get(`/fhir/${type}/${id}`);
  const history = await request(app).get(`/fhir/${type}/${id}/_history`);
  return { status: current.status, body: current.body, history: history.body.entry };
}

/** The IssueType codes of R4 (http://hl7.org/fhir/ValueSet/issue-type). */
export const ISSUE_TYPES = new Set([
  'invalid',
  'structure',
  'required',
  'value',
  'invariant',
  'security',
  'login',
  'unknown',
  'expired',
  'forbidden',
  'suppressed',
  'processing',
  'not-supported',
  'duplicate',
  'multiple-matches',
  'not-found',
  'deleted',
  'too-long',
  'code-invalid',
  'extension',
  'too-costly',
  'business-rule',
  'conflict',
  'transient',
  'lock-error',
  'no-store',
  'exception',
  'timeout',
  'incomplete',
  'throttled',
  'informational',
]);

/** Asserts the response is an OperationOutcome error with the status, a spec issue code and (optionally) an expression. */
export function expectOutcome(
  response: request.Response,
  status: number,
  options: { code?: string; expression?: string } = {},
): void {
  expect(response.status).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/fhir\+json/);
  expect(response.body.resourceType).toBe('OperationOutcome');
  const issues = response.body.issue as {
    severity: string;
    code: string;
    expression?: string[];
    details?: { text?: string };
  }[];
  expect(issues.length).toBeGreaterThan(0);
  for (const i of issues) expect(ISSUE_TYPES.has(i.code)).toBe(true);
  // Validation may list warnings (dom-6, ...) before the errors.
  const firstError = issues.find((i) => i.severity === 'error' || i.severity === 'fatal');
  expect(firstError).toBeDefined();
  expect(firstError?.details?.text).toBeTruthy();
  if (options.code) expect(firstError?.code).toBe(options.code);
  if (options.expression) expect(issues.some((i) => i.expression?.includes(options.expression as string))).toBe(true);
  expect(JSON.stringify(response.body)).not.toMatch(/at .*\.(ts|js):\d+/);
}
