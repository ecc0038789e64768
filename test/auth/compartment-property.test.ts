import type { Bundle, Resource } from '@medplum/fhirtypes';
import fc from 'fast-check';
import request from 'supertest';
import { compartmentsOf } from '../../src/fhir/compartments';
import { startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';
import { loadWorld, RECORDS } from './fixtures';

/**
 * Property: whatever a `patient/` token searches for (parameters, includes, chains, _has, totals,
 * history), nothing outside its patient's compartment is returned, counted or named.
 */
let server: TestServer;
let authorization: string;
beforeAll(async () => {
  server = await startTestServer(__filename);
  await loadWorld(server.app);
  authorization = `Bearer ${await tokenFor({ scope: 'patient/*.rs', patient: 'acc-p1' })}`;
});
afterAll(async () => server.close());

const OTHER_IDS = ['acc-p2', RECORDS.mrP2.id, RECORDS.mrP2x.id, `${RECORDS.mrP2.id}-fill`, `${RECORDS.mrP2x.id}-fill`];

const types = fc.constantFrom('MedicationRequest', 'MedicationDispense', 'Patient', 'CareTeam', 'Consent');
const condition = fc.constantFrom(
  ['status', 'active'],
  ['status', 'completed'],
  ['subject.family', 'Matrix'],
  ['subject', 'Patient/acc-p2'],
  ['subject', 'Patient/acc-p1'],
  ['patient.given', 'Two'],
  ['_id', 'acc-p2'],
  ['_has:MedicationRequest:subject:status', 'active'],
  ['_has:MedicationDispense:subject:status', 'completed'],
  ['_include', '*'],
  ['_include', 'MedicationRequest:subject'],
  ['_include', 'MedicationDispense:prescription'],
  ['_revinclude', 'MedicationRequest:subject'],
  ['_revinclude', 'MedicationDispense:subject'],
  ['_include:iterate', 'MedicationRequest:subject'],
  ['_total', 'accurate'],
  ['_sort', '-_lastUpdated'],
  ['_count', '1'],
  ['_count', '3'],
) as fc.Arbitrary<[string, string]>;

/** Parameters that apply to the type (others are ignored leniently, so any combination is a search). */
const searchArbitrary = fc.record({ type: types, params: fc.array(condition, { maxLength: 4 }) });
const historyArbitrary = fc.constantFrom(
  '/fhir/_history',
  '/fhir/MedicationRequest/_history',
  '/fhir/Patient/_history',
  '/fhir/MedicationDispense/_history',
  '/fhir/Patient/acc-p2/_history',
  '/fhir/Patient/acc-p1/MedicationRequest',
  '/fhir/Patient/acc-p2/MedicationRequest',
);

function expectInsideCompartment(body: Bundle, text: string): void {
  for (const entry of body.entry ?? []) {
    const resource = entry.resource as Resource | undefined;
    if (!resource || resource.resourceType === 'OperationOutcome') continue;
    const compartments = compartmentsOf(resource);
    expect([resource.resourceType, resource.id, compartments.every((c) => c === 'Patient/acc-p1')]).toEqual([
      resource.resourceType,
      resource.id,
      true,
    ]);
  }
  for (const id of OTHER_IDS) expect([id, text.includes(`/${id}"`)]).toEqual([id, false]);
}

it('searches under a patient/ token stay inside the compartment, and count only it', async () => {
  await fc.assert(
    fc.asyncProperty(searchArbitrary, async ({ type, params }) => {
      const query = new URLSearchParams(params).toString();
      const response = await request(server.rawApp)
        .get(`/fhir/${type}?${query}`)
        .set('Authorization', authorization)
        .set('Prefer', 'handling=lenient');
      if (response.status !== 200) {
        // A search the server refuses (e.g. too broad an _include) refuses alike for everyone.
        expect(response.status).toBe(400);
        return;
      }
      expectInsideCompartment(response.body as Bundle, response.text);
      // Counted among what it may see: the same search in the compartment, by an administrator.
      const count = await request(server.rawApp)
        .get(
          `/fhir/${type}?${new URLSearchParams([...params.filter(([n]) => !n.startsWith('_')), ['_summary', 'count']])}`,
        )
        .set('Authorization', authorization)
        .set('Prefer', 'handling=lenient');
      const oracle =
        type === 'Patient'
          ? await request(server.app)
              .get(
                `/fhir/Patient?${new URLSearchParams([...params.filter(([n]) => !n.startsWith('_')), ['_id', 'acc-p1'], ['_summary', 'count']])}`,
              )
              .set('Prefer', 'handling=lenient')
          : await request(server.app)
              .get(
                `/fhir/Patient/acc-p1/${type}?${new URLSearchParams([...params.filter(([n]) => !n.startsWith('_')), ['_summary', 'count']])}`,
              )
              .set('Prefer', 'handling=lenient');
      if (count.status === 200 && oracle.status === 200 && !params.some(([n]) => n === '_id')) {
        expect(count.body.total).toBe(oracle.body.total);
      }
    }),
    { numRuns: 80 },
  );
});

it('history and compartment reads under a patient/ token stay inside the compartment', async () => {
  await fc.assert(
    fc.asyncProperty(historyArbitrary, fc.integer({ min: 1, max: 50 }), async (path, count) => {
      const response = await request(server.rawApp).get(`${path}?_count=${count}`).set('Authorization', authorization);
      if (path === '/fhir/Patient/acc-p2/_history') {
        expect(response.status).toBe(404);
        return;
      }
      expect(response.status).toBe(200);
      expectInsideCompartment(response.body as Bundle, response.text);
    }),
    { numRuns: 30 },
  );
});
