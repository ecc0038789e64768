import type { Express } from 'express';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import { createServerContext, type RunningContext } from '../../src/app-context';
import { loadConfig, type ServerConfig } from '../../src/config';
import { createApp } from '../../src/http/app';
import { TEST_AUTH, withAdminToken } from '../support/tokens';
import { databaseNameFor, TEST_QUEUE_WAIT_MS, TEST_TIME_BUDGET_MS } from '../support/server';

export interface ClusterMember {
  app: Express;
  running: RunningContext;
}

export interface TestCluster {
  members: ClusterMember[];
  close(): Promise<void>;
}

/**
 * Several server contexts on one database in this jest process: to the database they are as many
 * server processes (each its own ProcessRegistry incarnation and SERVER_ID), sharing nothing in memory.
 */
export async function startCluster(testFile: string, size = 2, overrides: Partial<ServerConfig> = {}) {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error('MONGODB_URI is not set: the jest global setup starts the database engine');
  const base: ServerConfig = {
    ...loadConfig({}),
    databaseName: databaseNameFor(testFile),
    publicBaseUrl: 'http://meds-fhir.test/fhir',
    // Short, so that a process "killed" by a test is taken for dead quickly.
    journalLeaseMs: 2000,
    auth: TEST_AUTH,
    // Off unless a test asks for it (see test/support/server.ts).
    findings: { ...loadConfig({}).findings, enabled: false },
    requestTimeBudgetMs: TEST_TIME_BUDGET_MS,
    admission: { ...loadConfig({}).admission, maxQueueWaitMs: TEST_QUEUE_WAIT_MS },
    ...overrides,
  };
  const client = await MongoClient.connect(uri);
  await client.db(base.databaseName).dropDatabase();
  await client.close();
  const members: ClusterMember[] = [];
  for (let i = 0; i < size; i++) {
    const config = { ...base, serverId: `test-server-${i}` };
    const running = await createServerContext(config, uri, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
    // createServerContext starts the definitions feed and reads the shared page-token key itself.
    members.push({ app: withAdminToken(createApp(running.context)), running });
  }
  return {
    members,
    async close() {
      // A member a test "crashed" (closed its connection) fails to close again: that is expected.
      for (const member of members) await member.running.close().catch(() => undefined);
      const client = await MongoClient.connect(uri);
      await client.db(base.databaseName).dropDatabase();
      await client.close();
    },
  } satisfies TestCluster;
}

/** Polls `probe` until it answers true or `timeoutMs` passes; answers the time it took, or throws. */
export async function within(timeoutMs: number, probe: () => Promise<boolean>, pauseMs = 50): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
}
