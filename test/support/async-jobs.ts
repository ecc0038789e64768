import type { RunningContext } from '../../src/app-context';
import type { TestServer } from './server';

/** The path and query of an absolute URL the server gave (a status or file URL), for supertest. */
export const pathOf = (url: string): string => url.replace(/^https?:\/\/[^/]+/, '');

/** The job id of an asynchronous request's status URL (`…?_jobId=…`). */
export const jobIdOf = (status: string): string => new URL(status, 'http://x').searchParams.get('_jobId') as string;

/**
 * The servers and bare contexts a restart test starts on its databases, closed together at the end:
 * the contexts' databases dropped first, then every server (one already closed by the test is fine).
 */
export class ServerPool {
  readonly servers: TestServer[] = [];
  readonly contexts: RunningContext[] = [];

  async close(): Promise<void> {
    for (const context of this.contexts) {
      await context.connection.db.dropDatabase();
      await context.close();
    }
    for (const server of this.servers) await server.close().catch(() => undefined);
  }
}
