import type { Patient } from '@medplum/fhirtypes';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import request from 'supertest';
import { createServerContext } from '../../src/app-context';
import { loadConfig } from '../../src/config';
import { startEmbeddedEngine } from '../../src/db/embedded-engine';
import { createApp } from '../../src/http/app';
import { TEST_AUTH, withAdminToken } from '../support/tokens';
import { FHIR_JSON } from '../support/server';

/** Starts the embedded engine and the app on a data directory, as `npm start` does. */
async function boot(dataDir: string) {
  const engine = await startEmbeddedEngine({ dataDir });
  const config = {
    ...loadConfig({}),
    databaseName: 'durability',
    publicBaseUrl: 'http://meds-fhir.test/fhir',
    auth: TEST_AUTH,
  };
  const running = await createServerContext(config, engine.uri, pino({ level: 'silent' }));
  return {
    app: withAdminToken(createApp(running.context)),
    stop: async () => {
      await running.close();
      await engine.stop();
    },
  };
}

describe('durability', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meds-fhir-durability-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('keeps acknowledged writes, versions and deletions across a restart of the engine and the server', async () => {
    const first = await boot(dataDir);
    const created = await request(first.app)
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Patient', name: [{ family: 'Durable' }] } satisfies Patient);
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await request(first.app)
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...created.body, gender: 'female' })
      .expect(200);
    const doomed = await request(first.app)
      .post('/fhir/Patient')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Patient' });
    await request(first.app).delete(`/fhir/Patient/${doomed.body.id}`).expect(200);
    await first.stop();

    const second = await boot(dataDir);
    try {
      const read = await request(second.app).get(`/fhir/Patient/${id}`);
      expect(read.status).toBe(200);
      expect(read.body.gender).toBe('female');
      expect(read.body.meta.versionId).toBe('2');
      expect((await request(second.app).get(`/fhir/Patient/${id}/_history/1`)).body.name[0].family).toBe('Durable');
      expect((await request(second.app).get(`/fhir/Patient/${doomed.body.id}`)).status).toBe(410);
      // The version sequence continues where it stopped.
      const updated = await request(second.app)
        .put(`/fhir/Patient/${id}`)
        .set('Content-Type', FHIR_JSON)
        .set('If-Match', 'W/"2"')
        .send({ ...read.body, gender: 'other' });
      expect(updated.body.meta.versionId).toBe('3');
    } finally {
      await second.stop();
    }
  });
});
