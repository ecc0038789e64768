import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import {
  authorizationOf,
  IDENTIFIER_SYSTEM,
  loadWorld,
  PERSONAS,
  RECORD_KEYS,
  RECORDS,
  type Persona,
  type RecordKey,
} from './fixtures';

/**
 * The access matrix of issue 11, written as data (fixtures.ts: personas × records): every path that
 * can reveal a record is asked by every persona over HTTP, and must show exactly what the persona
 * may see; refused personas get 401 everywhere.
 */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
  await loadWorld(server.app);
});
afterAll(async () => server.close());

async function ask(persona: Persona, method: 'get' | 'post' | 'put', path: string, body?: unknown) {
  const authorization = await authorizationOf(persona);
  let call = request(server.rawApp)[method](path);
  if (authorization) call = call.set('Authorization', authorization);
  if (body !== undefined) call = call.set('Content-Type', FHIR_JSON).send(body as object);
  return call;
}

const keyOf = (resource: Resource): RecordKey | undefined =>
  RECORD_KEYS.find((k) => RECORDS[k].type === resource.resourceType && RECORDS[k].id === resource.id);

/** The world's records among a Bundle's entries (others, such as CareTeams, are ignored). */
function recordsIn(bundle: Bundle): RecordKey[] {
  return (bundle.entry ?? [])
    .flatMap((e) => (e.resource ? [keyOf(e.resource)] : []))
    .filter((k): k is RecordKey => k !== undefined)
    .sort();
}

const visible = (persona: Persona, type?: string) =>
  persona.sees.filter((k) => !type || RECORDS[k].type === type).sort();

function expectRefused(persona: Persona, response: request.Response): void {
  expect(response.status).toBe(401);
  expect(response.headers['www-authenticate']).toMatch(/^Bearer /);
  expect(response.headers['www-authenticate'].includes('error="invalid_token"')).toBe(persona.claims !== undefined);
  expect((response.body as OperationOutcome).issue?.[0].code).toBe('login');
}

describe.each(PERSONAS.map((p) => [p.name, p] as const))('%s', (_name, persona) => {
  it.each(RECORD_KEYS)('read, vread and instance history of %s', async (key) => {
    const { type, id } = RECORDS[key];
    const shown = persona.sees.includes(key);
    for (const path of [`/fhir/${type}/${id}`, `/fhir/${type}/${id}/_history/1`, `/fhir/${type}/${id}/_history`]) {
      const response = await ask(persona, 'get', path);
      if (persona.refused) {
        expectRefused(persona, response);
        continue;
      }
      expect([path, response.status]).toEqual([path, shown ? 200 : 404]);
      if (!shown) expect(JSON.stringify(response.body)).not.toContain('buprenorphine program');
    }
  });

  it('searches: plain, totals, _summary=count, _include, _revinclude, chain and _has', async () => {
    const searches: [string, (b: Bundle) => void][] = [
      ['/fhir/MedicationRequest', (b) => expect(recordsIn(b)).toEqual(visible(persona, 'MedicationRequest'))],
      [
        '/fhir/MedicationRequest?_total=accurate&_count=1',
        (b) => expect(b.total).toBe(visible(persona, 'MedicationRequest').length),
      ],
      [
        '/fhir/MedicationRequest?_summary=count',
        (b) => expect(b.total).toBe(visible(persona, 'MedicationRequest').length),
      ],
      [
        '/fhir/MedicationRequest?_include=MedicationRequest:medication',
        (b) =>
          expect(recordsIn(b)).toEqual(
            [
              ...visible(persona, 'MedicationRequest'),
              ...(visible(persona, 'MedicationRequest').length && persona.sees.includes('med') ? ['med' as const] : []),
            ].sort(),
          ),
      ],
      [
        '/fhir/Patient?_revinclude=MedicationRequest:subject',
        (b) =>
          expect(recordsIn(b)).toEqual(
            [...visible(persona, 'Patient'), ...visible(persona, 'MedicationRequest')].sort(),
          ),
      ],
      [
        '/fhir/MedicationRequest?subject.family=Matrix',
        (b) => expect(recordsIn(b)).toEqual(visible(persona, 'MedicationRequest')),
      ],
      [
        // Only the Part 2 prescriptions carry this note: a patient matches only if the persona sees one.
        `/fhir/Patient?_has:MedicationRequest:subject:identifier=${IDENTIFIER_SYSTEM}|acc-mr-p1-part2,${IDENTIFIER_SYSTEM}|acc-mr-p2-part2`,
        (b) =>
          expect(recordsIn(b)).toEqual(
            (['P1', 'P2'] as const).filter(
              (p) => persona.sees.includes(p) && persona.sees.includes(`mr${p}x` as RecordKey),
            ),
          ),
      ],
      [
        '/fhir/Patient/acc-p1/MedicationRequest',
        (b) => expect(recordsIn(b)).toEqual(visible(persona, 'MedicationRequest').filter((k) => k.startsWith('mrP1'))),
      ],
    ];
    for (const [path, check] of searches) {
      const response = await ask(persona, 'get', path);
      if (persona.refused) {
        expectRefused(persona, response);
        continue;
      }
      expect([path, response.status]).toEqual([path, 200]);
      check(response.body as Bundle);
    }
  });

  it('type and system history show only visible versions', async () => {
    for (const path of ['/fhir/MedicationRequest/_history?_count=500', '/fhir/_history?_count=1000']) {
      const response = await ask(persona, 'get', path);
      if (persona.refused) {
        expectRefused(persona, response);
        continue;
      }
      expect(response.status).toBe(200);
      const type = path.startsWith('/fhir/MedicationRequest') ? 'MedicationRequest' : undefined;
      expect([...new Set(recordsIn(response.body as Bundle))].sort()).toEqual(visible(persona, type));
    }
  });

  it('authorizes each batch entry on its own', async () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: RECORD_KEYS.map((k) => ({ request: { method: 'GET', url: `${RECORDS[k].type}/${RECORDS[k].id}` } })),
    };
    const response = await ask(persona, 'post', '/fhir', bundle);
    if (persona.refused) return expectRefused(persona, response);
    expect(response.status).toBe(200);
    const statuses = (response.body as Bundle).entry?.map((e) => e.response?.status.split(' ')[0]);
    expect(statuses).toEqual(RECORD_KEYS.map((k) => (persona.sees.includes(k) ? '200' : '404')));
  });

  it('refuses a conditional update to read-only scopes, and it changes nothing', async () => {
    const response = await ask(
      persona,
      'put',
      `/fhir/MedicationRequest?identifier=${IDENTIFIER_SYSTEM}|acc-mr-p1-part2`,
      {
        resourceType: 'MedicationRequest',
        status: 'stopped',
        intent: 'order',
        medicationReference: { reference: 'Medication/acc-med' },
        subject: { reference: 'Patient/acc-p1' },
      },
    );
    if (persona.refused) return expectRefused(persona, response);
    expect(response.status).toBe(403);
    expect((response.body as OperationOutcome).issue?.[0].code).toBe('forbidden');
    const stored = await request(server.app).get('/fhir/MedicationRequest/acc-mr-p1-part2');
    expect(stored.body.status).toBe('active');
  });

  it('$medication-review draws nothing from hidden records', async () => {
    for (const patient of ['P1', 'P2'] as const) {
      const response = await ask(persona, 'get', `/fhir/Patient/${RECORDS[patient].id}/$medication-review`);
      if (persona.refused) {
        expectRefused(persona, response);
        continue;
      }
      expect(response.status).toBe(persona.sees.includes(patient) ? 200 : 404);
      // As references (evidence, subjects): `Type/id"`; the 404's text names only the id asked for.
      const text = JSON.stringify(response.body);
      for (const key of RECORD_KEYS.filter((k) => !persona.sees.includes(k))) {
        expect([key, text.includes(`${RECORDS[key].type}/${RECORDS[key].id}"`)]).toEqual([key, false]);
      }
      // And what it may see is used: the review's evidence names the patient's visible prescriptions.
      for (const key of persona.sees.filter((k) => k.startsWith(`mr${patient}`))) {
        expect([key, text.includes(`${RECORDS[key].type}/${RECORDS[key].id}"`)]).toEqual([key, true]);
      }
    }
  });
});
