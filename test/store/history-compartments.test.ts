import type { Bundle, Observation, Patient } from '@medplum/fhirtypes';
import pino from 'pino';
import request from 'supertest';
import { SETTINGS_COLLECTION } from '../../src/fhir/page-token';
import { HISTORY_COLLECTION, type HistoryDocument } from '../../src/store/documents';
import { backfillHistoryCompartments } from '../../src/store/history-compartments';
import { createResource, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';

/** Versions stored before access control get their compartments once, so restricted history shows them. */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

it('gives versions without compartments theirs, after which a patient token sees them in history', async () => {
  const patient = await createResource<Patient>(server.app, { resourceType: 'Patient', name: [{ family: 'Before' }] });
  const observation = await createResource<Observation>(server.app, {
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'old' },
    subject: { reference: `Patient/${patient.id}` },
  });
  const db = server.running.connection.db;
  const history = db.collection<HistoryDocument>(HISTORY_COLLECTION);
  // As a version written before versions carried compartments.
  await history.updateOne({ _id: `Observation/${observation.id}/1` }, { $unset: { compartments: '' } });
  const authorization = `Bearer ${await tokenFor({ scope: 'patient/*.rs', patient: patient.id })}`;
  const seen = async () =>
    (
      (await request(server.rawApp).get('/fhir/Observation/_history').set('Authorization', authorization))
        .body as Bundle
    ).entry?.length ?? 0;
  expect(await seen()).toBe(0);

  await db.collection(SETTINGS_COLLECTION).deleteOne({ _id: 'history-compartments-backfilled' as never });
  expect(await backfillHistoryCompartments(db, pino({ level: 'silent' }))).toBe(1);
  expect((await history.findOne({ _id: `Observation/${observation.id}/1` }))?.compartments).toEqual([
    `Patient/${patient.id}`,
  ]);
  expect(await seen()).toBe(1);
  // Once done, later starts skip the scan.
  expect(await backfillHistoryCompartments(db, pino({ level: 'silent' }))).toBe(0);
});
