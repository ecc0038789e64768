import { ChildProcess, spawn } from 'node:child_process';
import { adminAuthorization, TEST_SECRET } from '../support/tokens';
import { once } from 'node:events';
import { join } from 'node:path';
import { freePort } from '../../src/db/embedded-engine';
import { databaseNameFor } from '../support/server';

async function waitForReady(base: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not become ready');
}

describe('the server process', () => {
  let child: ChildProcess | undefined;
  afterAll(() => child?.kill('SIGKILL'));

  it('drains in-flight requests on SIGTERM, then exits 0 after closing the database', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', '..', 'src', 'server.ts')], {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        MONGODB_DATABASE: databaseNameFor(__filename),
        LOG_LEVEL: 'info',
        AUTH_HS256_SECRET: TEST_SECRET,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitForReady(base);

    const authorization = await adminAuthorization();
    const body = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'in flight' } });
    const inFlight = Array.from({ length: 10 }, () =>
      fetch(`${base}/fhir/Observation`, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json', authorization },
        body,
      }).then(
        (r) => r.status,
        () => 'refused',
      ),
    );
    await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    const statuses = await Promise.all(inFlight);

    expect(code).toBe(0);
    // A request the server had accepted completes; one that arrived after the close is refused, never cut short.
    for (const status of statuses) expect([201, 'refused']).toContain(status);
    expect(output).toContain('draining in-flight requests');
    expect(output).toContain('"msg":"stopped"');
  });
});
