import { LookupCache } from '../../src/auth/lookup-cache';
import { createResource, startTestServer, type TestServer } from '../support/server';

/** The access decision's look-ups are reused until a commit of their type settles (any process's). */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

it('loads once while nothing of the type changed, and again after a commit of it', async () => {
  const { store, config } = server.running.context;
  const cache = new LookupCache(store.journal, config.clockSkewMs);
  let loads = 0;
  const load = async () => {
    loads++;
    return [];
  };
  const query: [string, string][] = [['participant', 'Practitioner/x']];
  await cache.find('CareTeam', query, load);
  await cache.find('CareTeam', query, load);
  expect(loads).toBe(1);
  await createResource(server.app, { resourceType: 'Observation', status: 'final', code: { text: 'other type' } });
  await cache.find('CareTeam', query, load);
  expect(loads).toBe(1);
  await createResource(server.app, { resourceType: 'CareTeam', status: 'active' });
  await cache.find('CareTeam', query, load);
  expect(loads).toBe(2);
  await cache.find('CareTeam', [['participant', 'Practitioner/y']], load);
  expect(loads).toBe(3);
});
