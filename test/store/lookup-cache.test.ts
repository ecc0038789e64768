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

it('asks the journal once for the look-ups of one decision, and still tells each type apart', async () => {
  const { store, config } = server.running.context;
  // Past the clock skew after the first test's commits, which would still count as changes.
  await new Promise((resolve) => setTimeout(resolve, config.clockSkewMs + 100));
  const cache = new LookupCache(store.journal, config.clockSkewMs);
  const loads = new Map<string, number>();
  const loader = (type: string) => async () => {
    loads.set(type, (loads.get(type) ?? 0) + 1);
    return [];
  };
  const decision = () =>
    Promise.all(
      ['CareTeam', 'Patient', 'Consent'].map((type) => cache.find(type, [['actor', 'Practitioner/z']], loader(type))),
    );
  await decision();
  let asked = 0;
  const changesSince = store.journal.changesSince.bind(store.journal);
  store.journal.changesSince = async (since, types) => {
    asked++;
    return changesSince(since, types);
  };
  try {
    await decision();
    expect(asked).toBe(1);
    expect(Object.fromEntries(loads)).toEqual({ CareTeam: 1, Patient: 1, Consent: 1 });
    await createResource(server.app, {
      resourceType: 'Consent',
      status: 'active',
      scope: { text: 'x' },
      category: [{ text: 'x' }],
      policyRule: { text: 'x' },
    });
    await decision();
    expect(asked).toBe(2);
    // Only the look-up whose type changed is read again.
    expect(Object.fromEntries(loads)).toEqual({ CareTeam: 1, Patient: 1, Consent: 2 });
  } finally {
    store.journal.changesSince = changesSince;
  }
});
