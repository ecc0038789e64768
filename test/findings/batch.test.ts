import type { Resource, Task } from '@medplum/fhirtypes';
import pino from 'pino';
import request from 'supertest';
import { evaluatePatient, evaluatePatients, type PatientState } from '../../src/modules/findings/evaluate';
import { reconcile } from '../../src/modules/findings/reconcile';
import { writePatientsFindings } from '../../src/modules/findings/writer';
import { ReviewDefinitions } from '../../src/modules/review/definitions';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { findingsOf, renamed, sync } from './support';

jest.setTimeout(120_000);

// Findings off: no worker runs in the background; the tests run the worker's steps themselves.
let server: TestServer;
const definitions = new ReviewDefinitions(pino({ level: 'silent' }));
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

const reader = () => server.running.context.store.directReader();

/** What the worker does with a batch: evaluate together, reconcile each, store. */
async function evaluateAndWrite(patients: string[], date: string): Promise<Map<string, unknown>> {
  const { states, failed } = await evaluatePatients(reader(), definitions, patients, date);
  expect([...failed.keys()]).toEqual([]);
  const batch = states.map((state) => ({ patientId: state.patientId, writes: reconcile(state) }));
  return writePatientsFindings(server.running.context, batch);
}

const careTeam = (patient: string): Resource => ({
  resourceType: 'CareTeam',
  id: `team-${patient}`,
  status: 'active',
  subject: { reference: `Patient/${patient}` },
  participant: [{ member: { reference: 'Practitioner/batch-nurse' } }],
});

describe('patients evaluated together', () => {
  const patients = ['b-late', 'b-missed', 'b-opioid', 'b-low', 'b-on', 'b-gone', 'b-unknown'];

  beforeAll(async () => {
    await sync(server.app, [careTeam('b-late'), ...renamed('late-refill', 'b-late')]);
    await sync(server.app, renamed('missed-follow-up', 'b-missed'));
    await sync(server.app, renamed('opioid-benzodiazepine', 'b-opioid'));
    await sync(server.app, renamed('low-pdc', 'b-low'));
    await sync(server.app, renamed('on-track', 'b-on'));
    await sync(server.app, renamed('late-refill', 'b-gone'));
    // b-gone's findings are stored, then the patient is deleted: its evaluation must close them.
    expect(await evaluateAndWrite(patients, '2026-06-30')).toEqual(new Map());
    expect((await findingsOf(server.app, 'DetectedIssue', 'b-gone')).length).toBeGreaterThan(0);
    const deleted = await request(server.app).delete('/fhir/Patient/b-gone');
    expect(deleted.status).toBeLessThan(300);
  });

  it('give each patient the state it is given alone', async () => {
    const { states, failed } = await evaluatePatients(reader(), definitions, patients, '2026-07-01');
    expect(failed.size).toBe(0);
    expect(states.map((s) => s.patientId)).toEqual(patients);
    const alone: PatientState[] = [];
    for (const patient of patients) alone.push(await evaluatePatient(reader(), definitions, patient, '2026-07-01'));
    expect(states).toEqual(alone);
    // What was compared holds findings, care teams and a deleted patient, not only empty states.
    const byId = new Map(states.map((s) => [s.patientId, s]));
    expect(byId.get('b-late')?.careTeam).toEqual([{ reference: 'Practitioner/batch-nurse' }]);
    expect(byId.get('b-late')?.desired?.map((d) => d.key)).toContain('b-late|late-refill|statins');
    expect(byId.get('b-missed')?.stored.length).toBeGreaterThan(0);
    expect(byId.get('b-gone')?.desired).toBeUndefined();
    expect(byId.get('b-gone')?.stored.length).toBeGreaterThan(0);
    expect(byId.get('b-unknown')).toEqual({ patientId: 'b-unknown', date: '2026-07-01', stored: [], careTeam: [] });
  });

  it('store what each patient evaluated alone would have stored', async () => {
    expect(await evaluateAndWrite(patients, '2026-07-01')).toEqual(new Map());
    for (const patient of patients) {
      // Alone, the review finds nothing left to write: the batch stored exactly its findings.
      expect(reconcile(await evaluatePatient(reader(), definitions, patient, '2026-07-01'))).toEqual([]);
    }
    const gone = await findingsOf(server.app, 'DetectedIssue', 'b-gone');
    expect(gone.map((f) => f.status)).not.toContain('preliminary');
  });
});

describe('a batch whose transaction fails', () => {
  it('stores the other patients, one at a time, and names the one whose finding changed meanwhile', async () => {
    await sync(server.app, renamed('missed-follow-up', 'c-acked'));
    await sync(server.app, renamed('missed-follow-up', 'c-other'));
    expect(await evaluateAndWrite(['c-acked', 'c-other'], '2026-06-30')).toEqual(new Map());

    // The next day's evaluation refreshes both patients' overdue Task (its text names the days).
    const { states } = await evaluatePatients(reader(), definitions, ['c-acked', 'c-other'], '2026-07-01');
    const batch = states.map((state) => ({ patientId: state.patientId, writes: reconcile(state) }));
    expect(batch.every((p) => p.writes.length > 0)).toBe(true);

    // Meanwhile the care team accepts c-acked's Task: the batch's guarded update of it is stale.
    const overdue = ((await findingsOf(server.app, 'Task', 'c-acked')) as unknown as Task[]).find(
      (t) => t.code?.coding?.[0].code === 'overdue-follow-up',
    );
    expect(overdue).toBeDefined();
    const accepted = await request(server.app)
      .put(`/fhir/Task/${overdue?.id}`)
      .set('Content-Type', FHIR_JSON)
      .set('If-Match', `W/"${overdue?.meta?.versionId}"`)
      .send({ ...overdue, status: 'accepted' });
    expect(accepted.status).toBe(200);

    const versionsOf = async (patient: string) =>
      [
        ...(await findingsOf(server.app, 'Task', patient)),
        ...(await findingsOf(server.app, 'DetectedIssue', patient)),
      ].map((f) => `${f.id}/${f.meta?.versionId}/${String(f.status)}`);
    const before = await versionsOf('c-acked');

    const failed = await writePatientsFindings(server.running.context, batch);
    expect([...failed.keys()]).toEqual(['c-acked']);
    expect((failed.get('c-acked') as { status?: number }).status).toBe(412);

    // c-other's refresh is stored; none of c-acked's writes is (all or nothing), the team's version stands.
    expect(reconcile(await evaluatePatient(reader(), definitions, 'c-other', '2026-07-01'))).toEqual([]);
    expect(await versionsOf('c-acked')).toEqual(before);
    expect(before).toContain(`${overdue?.id}/${accepted.body.meta.versionId}/accepted`);
  });
});
