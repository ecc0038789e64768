import type { Bundle, BundleEntry, Observation, Patient } from '@medplum/fhirtypes';
import request from 'supertest';
import { createResource, FHIR_JSON, startTestServer, TestServer } from '../support/server';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

const observation: Observation = {
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '44261-6', display: 'PHQ-9 total score' }] },
  subject: { reference: 'Patient/p1' },
  valueInteger: 12,
};

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function followAll(path: string): Promise<BundleEntry[]> {
  const entries: BundleEntry[] = [];
  let url: string | undefined = path;
  while (url) {
    const response = await request(server.app).get(url);
    expect(response.status).toBe(200);
    const bundle = response.body as Bundle;
    expect(bundle.type).toBe('history');
    entries.push(...(bundle.entry ?? []));
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    url = next ? next.replace('http://meds-fhir.test', '') : undefined;
  }
  return entries;
}

describe('history', () => {
  it('lists the versions of one resource newest first, with request and response details', async () => {
    const created = await createResource(server.app, observation);
    for (const value of [13, 14]) {
      await request(server.app)
        .put(`/fhir/Observation/${created.id}`)
        .set('Content-Type', FHIR_JSON)
        .send({ ...created, valueInteger: value })
        .expect(200);
    }
    await request(server.app).delete(`/fhir/Observation/${created.id}`).expect(200);
    const response = await request(server.app).get(`/fhir/Observation/${created.id}/_history`);
    const bundle = response.body as Bundle;
    expect(bundle.entry?.map((e) => e.response?.etag)).toEqual(['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']);
    expect(bundle.entry?.map((e) => e.request?.method)).toEqual(['DELETE', 'PUT', 'PUT', 'POST']);
    expect(bundle.entry?.[0].resource).toBeUndefined();
    expect((bundle.entry?.[1].resource as Observation).valueInteger).toBe(14);
    expect(bundle.entry?.[3].response?.status).toBe('201 Created');
    expect(bundle.entry?.[3].fullUrl).toBe(`http://meds-fhir.test/fhir/Observation/${created.id}`);
  });

  it('pages by cursor with _count and next links, at type and system level, without gaps or repeats', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 7; i++)
      ids.add((await createResource(server.app, { ...observation, valueInteger: i })).id as string);
    const typeEntries = await followAll('/fhir/Observation/_history?_count=3');
    const typeIds = typeEntries.map((e) => `${e.fullUrl}|${e.response?.etag}`);
    expect(new Set(typeIds).size).toBe(typeIds.length);
    for (const id of ids) expect(typeEntries.some((e) => e.fullUrl?.endsWith(`/Observation/${id}`))).toBe(true);
    const lastModified = typeEntries.map((e) => Date.parse(e.response?.lastModified as string));
    expect([...lastModified].sort((a, b) => b - a)).toEqual(lastModified);

    const patient = await createResource<Patient>(server.app, { resourceType: 'Patient', active: true });
    const systemEntries = await followAll('/fhir/_history?_count=4');
    // Start-up stored the shipped conformance resources (profiles/), views (views/) and measures (measures/)
    // before the test's writes.
    const shipped = systemEntries.filter((e) =>
      /\/(StructureDefinition|ValueSet|CodeSystem|ViewDefinition|OperationDefinition|Measure)\//.test(e.fullUrl ?? ''),
    );
    expect(shipped.length).toBeGreaterThan(0);
    expect(systemEntries.length).toBe(typeEntries.length + 1 + shipped.length);
    expect(systemEntries[0].fullUrl).toBe(`http://meds-fhir.test/fhir/Patient/${patient.id}`);
  });

  it('_since keeps versions at or after the instant; _at keeps the versions current during the period', async () => {
    const created = await createResource(server.app, observation);
    await pause(30);
    const between = new Date().toISOString();
    await pause(30);
    await request(server.app)
      .put(`/fhir/Observation/${created.id}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...created, valueInteger: 20 })
      .expect(200);
    await pause(30);
    const after = new Date().toISOString();

    const since = await request(server.app).get(
      `/fhir/Observation/${created.id}/_history?_since=${encodeURIComponent(between)}`,
    );
    expect(since.body.entry.map((e: BundleEntry) => e.response?.etag)).toEqual(['W/"2"']);
    const atBetween = await request(server.app).get(
      `/fhir/Observation/${created.id}/_history?_at=${encodeURIComponent(between)}`,
    );
    expect(atBetween.body.entry.map((e: BundleEntry) => e.response?.etag)).toEqual(['W/"1"']);
    const atAfter = await request(server.app).get(
      `/fhir/Observation/${created.id}/_history?_at=${encodeURIComponent(after)}`,
    );
    expect(atAfter.body.entry.map((e: BundleEntry) => e.response?.etag)).toEqual(['W/"2"']);
    const sinceFuture = await request(server.app).get(`/fhir/Observation/${created.id}/_history?_since=2999-01-01`);
    expect(sinceFuture.body.entry).toEqual([]);
  });

  it('rejects a page token that was altered', async () => {
    for (let i = 0; i < 3; i++) await createResource(server.app, observation);
    const first = await request(server.app).get('/fhir/Observation/_history?_count=1');
    const next = (first.body as Bundle).link?.find((l) => l.relation === 'next')?.url as string;
    const token = new URL(next).searchParams.get('_page') as string;
    const [payload, signature] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ t: Date.now(), k: 'x' })).toString('base64url');
    const response = await request(server.app).get(`/fhir/Observation/_history?_count=1&_page=${forged}.${signature}`);
    expect(response.status).toBe(400);
    expect(payload).not.toBe(forged);
  });
});
