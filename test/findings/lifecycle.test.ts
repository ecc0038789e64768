import type { DetectedIssue, MedicationDispense, Task } from '@medplum/fhirtypes';
import pino from 'pino';
import request from 'supertest';
import { FINDING_KEY_SYSTEM, RESOLUTION_EXTENSION } from '../../src/modules/findings/model';
import { FINDINGS_AGENT } from '../../src/modules/findings/writer';
import { auditsOf } from '../audit/support';
import { expectOutcome, FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { findingsOf, findingsOn, moveClock, scenario, settled, sync, syncBundle } from './support';

// Evaluations run in the background; on a loaded 2-core machine a few patients can take a while.
jest.setTimeout(180_000);

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename, findingsOn(), {
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  });
});
afterAll(async () => server.close());

const keyOf = (r: unknown) =>
  (r as { identifier?: { system?: string; value?: string }[] }).identifier?.find((i) => i.system === FINDING_KEY_SYSTEM)
    ?.value;

describe('standing findings over time', () => {
  const bundle = syncBundle(scenario('late-refill'));

  it('opens a late refill the day the supply plus grace runs out, not before', async () => {
    await moveClock(server.app, '2026-06-10');
    await sync(server.app, bundle);
    await settled(server.app);
    // The statin is covered to 2026-06-15 with 7 days of grace: late from 2026-06-23.
    await moveClock(server.app, '2026-06-22');
    await settled(server.app);
    expect((await findingsOf(server.app, 'DetectedIssue', 'late-refill')).map(keyOf)).not.toContain(
      'late-refill|late-refill|statins',
    );

    expect((await moveClock(server.app, '2026-06-23')).swept).toBe(true);
    await settled(server.app);
    const issues = await findingsOf(server.app, 'DetectedIssue', 'late-refill');
    const late = issues.filter((r) => keyOf(r) === 'late-refill|late-refill|statins') as DetectedIssue[];
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({
      status: 'preliminary',
      identifiedDateTime: '2026-06-23',
      patient: { reference: 'Patient/late-refill' },
      code: { coding: [{ system: 'https://meds-fhir.org/fhir/CodeSystem/medication-checks', code: 'late-refill' }] },
    });
    expect(late[0].detail).toContain('supply ran out on 2026-06-15');
    expect(late[0].evidence?.[0].detail?.length).toBeGreaterThan(0);
  });

  it('writes no new version when a re-sent sync changes nothing', async () => {
    const before = await findingsOf(server.app, 'DetectedIssue', 'late-refill');
    await sync(server.app, bundle);
    await settled(server.app);
    const after = await findingsOf(server.app, 'DetectedIssue', 'late-refill');
    expect(after.map((r) => [r.id, r.meta?.versionId])).toEqual(before.map((r) => [r.id, r.meta?.versionId]));
  });

  it('closes the late refill when a new fill arrives, and keeps it', async () => {
    const fill: MedicationDispense = {
      ...(bundle.entry?.find((e) => e.resource?.id === 'late-refill-statin-11')?.resource as MedicationDispense),
      id: 'late-refill-statin-12',
      whenHandedOver: '2026-06-23',
    };
    const created = await request(server.app)
      .put('/fhir/MedicationDispense/late-refill-statin-12')
      .set('Content-Type', FHIR_JSON)
      .send(fill);
    expect(created.status).toBe(201);
    await settled(server.app);
    const late = (await findingsOf(server.app, 'DetectedIssue', 'late-refill')).filter(
      (r) => keyOf(r) === 'late-refill|late-refill|statins',
    ) as DetectedIssue[];
    expect(late).toHaveLength(1);
    expect(late[0].status).toBe('cancelled');
    const resolution = late[0].extension?.find((e) => e.url === RESOLUTION_EXTENSION);
    expect(resolution?.extension).toEqual([
      { url: 'reason', valueString: 'The problem no longer holds as of 2026-06-23' },
      { url: 'date', valueDate: '2026-06-23' },
    ]);
  });

  it('opens a new finding when the problem comes back after it was resolved', async () => {
    // The new fill covers 30 days to 2026-07-22: late again from 2026-07-30.
    await moveClock(server.app, '2026-07-30');
    await settled(server.app);
    const late = (await findingsOf(server.app, 'DetectedIssue', 'late-refill')).filter(
      (r) => keyOf(r) === 'late-refill|late-refill|statins',
    ) as DetectedIssue[];
    expect(late.map((r) => r.status).sort()).toEqual(['cancelled', 'preliminary']);
    expect(late.find((r) => r.status === 'preliminary')?.identifiedDateTime).toBe('2026-07-30');
  });

  it('names the server as the agent of the audit record of what it wrote', async () => {
    const late = (await findingsOf(server.app, 'DetectedIssue', 'late-refill')).find(
      (r) => keyOf(r) === 'late-refill|late-refill|statins' && r.status === 'preliminary',
    );
    const events = await auditsOf(server, 'findings:late-refill');
    const writing = events.filter((e) => JSON.stringify(e.entity).includes(`DetectedIssue/${late?.id}/_history/1`));
    expect(writing.length).toBeGreaterThan(0);
    for (const event of writing) {
      expect(event.agent?.find((a) => a.requestor)?.who?.identifier?.value).toBe(FINDINGS_AGENT);
    }
  });
});

describe('acknowledgement', () => {
  it('never reopens or duplicates a Task the care team accepted', async () => {
    await moveClock(server.app, '2026-06-30');
    await sync(server.app, scenario('missed-follow-up'));
    await settled(server.app);
    const tasks = (await findingsOf(server.app, 'Task', 'missed-follow-up')) as unknown as Task[];
    const overdue = tasks.filter((t) => t.code?.coding?.[0].code === 'overdue-follow-up');
    expect(overdue).toHaveLength(1);
    expect(overdue[0].status).toBe('requested');

    const accepted = await request(server.app)
      .put(`/fhir/Task/${overdue[0].id}`)
      .set('Content-Type', FHIR_JSON)
      .set('If-Match', `W/"${overdue[0].meta?.versionId}"`)
      .send({ ...overdue[0], status: 'accepted', owner: { reference: 'Practitioner/nurse-1' } });
    expect(accepted.status).toBe(200);

    // The next day re-evaluates (the overdue text changes): still one Task, still the team's.
    await moveClock(server.app, '2026-07-01');
    await settled(server.app);
    const again = ((await findingsOf(server.app, 'Task', 'missed-follow-up')) as unknown as Task[]).filter(
      (t) => t.code?.coding?.[0].code === 'overdue-follow-up',
    );
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({
      id: overdue[0].id,
      status: 'accepted',
      owner: { reference: 'Practitioner/nurse-1' },
    });
    expect(again[0].description).toContain('days ago');
  });
});

describe('$test-clock', () => {
  it('refuses a date that is not one, naming the parameter', async () => {
    const response = await request(server.app).post('/fhir/$test-clock?date=yesterday');
    expectOutcome(response, 400, { expression: 'date' });
  });
});

describe('changes every review depends on', () => {
  it('re-evaluate every patient with active medications when a Medication is written', async () => {
    const worker = server.running.findings?.worker;
    await settled(server.app);
    const before = worker?.evaluations ?? 0;
    const medication = await request(server.app)
      .put('/fhir/Medication/findings-test-medication')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Medication', id: 'findings-test-medication', code: { text: 'a new product' } });
    expect(medication.status).toBe(201);
    await settled(server.app);
    // late-refill and missed-follow-up have active prescriptions.
    expect((worker?.evaluations ?? 0) - before).toBe(2);
  });
});

describe('finding keys', () => {
  it('find a finding by its business identifier, the key its `|` escaped', async () => {
    const key = encodeURIComponent(`${FINDING_KEY_SYSTEM}|late-refill\\|late-refill\\|statins`);
    const response = await request(server.app).get(`/fhir/DetectedIssue?identifier=${key}`);
    expect(response.status).toBe(200);
    const found = (response.body.entry ?? []).map((e: { resource: DetectedIssue }) => e.resource);
    expect(found.length).toBe(2);
    expect(new Set(found.map(keyOf))).toEqual(new Set(['late-refill|late-refill|statins']));
  });
});
