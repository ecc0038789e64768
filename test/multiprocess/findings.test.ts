import type { Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { SWEEPS_COLLECTION } from '../../src/modules/findings/sweep';
import { findingsOf, findingsOn, moveClock, renamed, settled, sync } from '../findings/support';
import { startCluster, type ClusterMember } from './cluster';

// Evaluations run in the background; on a loaded 2-core machine a few patients can take a while.
jest.setTimeout(180_000);

// Two server processes (contexts) with findings workers on one database.
let a: ClusterMember;
let b: ClusterMember;
let close: () => Promise<void>;
beforeAll(async () => {
  const cluster = await startCluster(__filename, 2, findingsOn({ workers: 2 }));
  [a, b] = cluster.members;
  close = cluster.close;
});
afterAll(async () => close());

const PATIENTS = Array.from({ length: 8 }, (_, i) => `mp-late-${i}`);
const evaluations = () => [a, b].map((m) => m.running.findings?.worker?.evaluations ?? 0).reduce((x, y) => x + y, 0);

describe('findings with two server processes', () => {
  it('evaluates each queued patient once, whichever process claims it', async () => {
    await moveClock(a.app, '2026-06-30');
    await settled(a.app);
    const before = evaluations();
    // One commit queues the eight patients: each is evaluated by one process, once.
    const resources: Resource[] = PATIENTS.flatMap((id) => renamed('late-refill', id));
    await sync(a.app, resources);
    await settled(b.app);
    expect(evaluations() - before).toBe(PATIENTS.length);
    for (const id of PATIENTS) {
      const issues = await findingsOf(b.app, 'DetectedIssue', id);
      const late = issues.filter((r) => JSON.stringify(r.code).includes('"late-refill"'));
      expect(late).toHaveLength(1);
      expect(late[0].meta?.versionId).toBe('1');
    }
  });

  it('runs the daily sweep once per day across both, sharing its evaluations', async () => {
    const before = evaluations();
    const moved = await moveClock(a.app, '2026-07-01');
    // B looks for the day's sweep too (as its timer would): the day's record is already A's.
    const bRan = await b.running.findings?.sweep.tick();
    expect([moved.swept, bRan]).toEqual([true, false]);
    await settled(a.app);
    const sweeps = await a.running.connection.db
      .collection(SWEEPS_COLLECTION)
      .find({ _id: '2026-07-01' as never })
      .toArray();
    expect(sweeps).toHaveLength(1);
    expect(sweeps[0]).toMatchObject({ by: 'test-server-0', state: 'queued' });
    expect(evaluations() - before).toBe(PATIENTS.length);
    // The day's evaluation refreshed every late refill (the days since run-out changed): one new version each.
    for (const id of PATIENTS) {
      const late = (await findingsOf(a.app, 'DetectedIssue', id)).filter((r) =>
        JSON.stringify(r.code).includes('"late-refill"'),
      );
      expect(late.map((r) => r.meta?.versionId)).toEqual(['2']);
    }
    const again = await request(b.app).post('/fhir/$test-clock?date=2026-07-01');
    expect(again.body.parameter.find((p: { name: string }) => p.name === 'swept').valueBoolean).toBe(false);
  });
});
