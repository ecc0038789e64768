import type { AuditEvent, Bundle, CapabilityStatement, MedicationRequest } from '@medplum/fhirtypes';
import request from 'supertest';
import { ACT_CODE } from '../../src/auth/labels';
import { createResource, expectOutcome, FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { HISTORY_COLLECTION } from '../../src/store/documents';
import { tokenFor } from '../support/tokens';
import { auditOf, requestId } from './support';

/**
 * Who may see the audit trail, and that nobody may change it (issue 11): AuditEvents are readable
 * only with a scope that names AuditEvent (a `*` scope does not reach them), follow the same
 * compartment and label rules as the records they describe, and are 405 to update, patch or delete.
 */
let server: TestServer;
const PART2 = { system: ACT_CODE, code: '42CFRPart2' };
const bearer = async (claims: Record<string, unknown>) => `Bearer ${await tokenFor(claims)}`;

/** Events made in beforeAll, one per kind of access the searches below tell apart. */
const ids = { p1Read: requestId('p1-read'), p2Read: requestId('p2-read'), part2Read: requestId('part2-read') };
const events: Record<keyof typeof ids, AuditEvent> = {} as never;
let auditor: string;

const prescription = (patient: string, part2 = false): MedicationRequest => ({
  resourceType: 'MedicationRequest',
  ...(part2 ? { meta: { security: [PART2] } } : {}),
  status: 'active',
  intent: 'order',
  medicationCodeableConcept: { text: 'naltrexone' },
  subject: { reference: `Patient/${patient}` },
});

function get(authorization: string, path: string) {
  return request(server.rawApp).get(path).set('Authorization', authorization);
}

const idsIn = (bundle: Bundle) => (bundle.entry ?? []).map((e) => e.resource?.id).sort();

beforeAll(async () => {
  server = await startTestServer(__filename);
  auditor = await bearer({ sub: 'privacy-officer', scope: 'system/AuditEvent.rs', clearance: ['*'] });
  for (const id of ['acl-p1', 'acl-p2']) {
    await request(server.app)
      .put(`/fhir/Patient/${id}`)
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Patient', id })
      .expect(201);
  }
  const ordinary1 = await createResource(server.app, prescription('acl-p1'));
  const ordinary2 = await createResource(server.app, prescription('acl-p2'));
  const labelled = await createResource(server.app, prescription('acl-p1', true));
  const doctor = await bearer({
    sub: 'doc-7',
    fhirUser: 'Practitioner/acl-doc',
    scope: 'system/*.rs',
    clearance: ['*'],
  });
  const reads: [keyof typeof ids, string][] = [
    ['p1Read', `MedicationRequest/${ordinary1.id}`],
    ['p2Read', `MedicationRequest/${ordinary2.id}`],
    ['part2Read', `MedicationRequest/${labelled.id}`],
  ];
  for (const [key, path] of reads) {
    await get(doctor, `/fhir/${path}`).set('X-Request-Id', ids[key]).expect(200);
    events[key] = await auditOf(server, ids[key]);
  }
});
afterAll(async () => server.close());

describe('nobody changes the audit trail', () => {
  const attempts = (id: string) => [
    `PUT AuditEvent/${id}`,
    `PATCH AuditEvent/${id}`,
    `DELETE AuditEvent/${id}`,
    'DELETE AuditEvent?action=R',
    'PUT AuditEvent?action=R',
    'PATCH AuditEvent?action=R',
  ];

  it.each([
    ['an administrator (system/*.cruds)', { sub: 'admin', scope: 'system/*.cruds', clearance: ['*'] }],
    ['a token that names AuditEvent with every permission', { sub: 'a', scope: 'system/AuditEvent.cruds' }],
    ['a patient app', { sub: 'p', patient: 'acl-p1', scope: 'patient/*.cruds' }],
  ])('%s gets 405 for update, patch and delete, and the event stays as it was', async (_name, claims) => {
    const authorization = await bearer(claims);
    const target = events.p1Read;
    for (const line of attempts(target.id as string)) {
      const [method, path] = line.split(' ');
      const verb = method.toLowerCase() as 'put' | 'patch' | 'delete';
      const call = request(server.rawApp)[verb](`/fhir/${path}`).set('Authorization', authorization);
      const body =
        method === 'PATCH'
          ? call
              .set('Content-Type', 'application/json-patch+json')
              .send([{ op: 'replace', path: '/action', value: 'C' }])
          : method === 'PUT'
            ? call.set('Content-Type', FHIR_JSON).send({ ...target, action: 'C' })
            : call;
      expectOutcome(await body, 405, { code: 'not-supported' });
    }
    const stored = await get(auditor, `/fhir/AuditEvent/${target.id}`).expect(200);
    expect(stored.body).toEqual(target);
  });

  it('refuses them inside a transaction (the whole transaction) and a batch (the entry)', async () => {
    const admin = await bearer({ sub: 'admin', scope: 'system/*.cruds', clearance: ['*'] });
    const target = events.p2Read;
    const entries = [
      { request: { method: 'DELETE' as const, url: `AuditEvent/${target.id}` } },
      {
        resource: { ...target, action: 'D' as const },
        request: { method: 'PUT' as const, url: `AuditEvent/${target.id}` },
      },
    ];
    for (const entry of entries) {
      const transaction = await request(server.rawApp)
        .post('/fhir')
        .set('Authorization', admin)
        .set('Content-Type', FHIR_JSON)
        .send({ resourceType: 'Bundle', type: 'transaction', entry: [entry] });
      expectOutcome(transaction, 405, { expression: 'Bundle.entry[0]' });
      const batch = await request(server.rawApp)
        .post('/fhir')
        .set('Authorization', admin)
        .set('Content-Type', FHIR_JSON)
        .send({ resourceType: 'Bundle', type: 'batch', entry: [entry] })
        .expect(200);
      expect((batch.body as Bundle).entry?.[0].response?.status).toMatch(/^405/);
    }
    expect((await get(auditor, `/fhir/AuditEvent/${target.id}`).expect(200)).body).toEqual(target);
  });

  it('the CapabilityStatement does not offer them', async () => {
    const statement = (await request(server.rawApp).get('/fhir/metadata').expect(200)).body as CapabilityStatement;
    const audit = statement.rest?.[0].resource?.find((r) => r.type === 'AuditEvent');
    const codes = audit?.interaction?.map((i) => i.code) ?? [];
    expect(codes).toEqual(expect.arrayContaining(['read', 'vread', 'search-type', 'create']));
    for (const code of ['update', 'patch', 'delete']) expect(codes).not.toContain(code);
    expect(audit?.conditionalDelete).toBe('not-supported');
    expect(statement.rest?.[0].resource?.find((r) => r.type === 'Patient')?.interaction?.map((i) => i.code)).toContain(
      'delete',
    );
  });
});

describe('who sees the audit trail', () => {
  it('a wildcard scope does not reveal it: 403 on the type, nothing through system search, includes or history', async () => {
    const admin = await bearer({ sub: 'admin', scope: 'system/*.cruds', clearance: ['*'] });
    expectOutcome(await get(admin, '/fhir/AuditEvent'), 403, { code: 'forbidden' });
    expectOutcome(await get(admin, `/fhir/AuditEvent/${events.p1Read.id}`), 403);
    const system = await get(admin, '/fhir?_type=AuditEvent,Patient').expect(200);
    expect((system.body as Bundle).entry?.some((e) => e.resource?.resourceType === 'AuditEvent')).toBe(false);
    const revinclude = await get(admin, '/fhir/Patient?_id=acl-p1&_revinclude=AuditEvent:patient').expect(200);
    expect((revinclude.body as Bundle).entry?.map((e) => e.resource?.resourceType)).toEqual(['Patient']);
    const history = await get(admin, '/fhir/_history?_count=1000').expect(200);
    expect((history.body as Bundle).entry?.some((e) => e.fullUrl?.includes('/AuditEvent/'))).toBe(false);
    const patientApp = await bearer({ sub: 'p', patient: 'acl-p1', scope: 'patient/*.rs' });
    expectOutcome(await get(patientApp, '/fhir/AuditEvent'), 403);
  });

  it('a scope that names AuditEvent searches it by patient, date, agent and action', async () => {
    const search = async (query: string) =>
      idsIn((await get(auditor, `/fhir/AuditEvent?${query}&_count=1000`).expect(200)).body as Bundle);
    const mine = [events.p1Read.id, events.p2Read.id, events.part2Read.id];
    const byPatient = await search('patient=Patient/acl-p1');
    expect(byPatient).toEqual(expect.arrayContaining([events.p1Read.id, events.part2Read.id]));
    expect(byPatient).not.toContain(events.p2Read.id);
    const today = new Date().toISOString().slice(0, 10);
    expect(await search(`date=ge${today}&agent=Practitioner/acl-doc&action=R`)).toEqual([...mine].sort());
    expect(await search('date=lt2000-01-01&agent=Practitioner/acl-doc')).toEqual([]);
    expect(await search('agent=Practitioner/acl-doc&action=C')).toEqual([]);
    expect(await search('agent:identifier=doc-7&action=R')).toEqual([...mine].sort());
    expect(await search(`entity:identifier=${ids.p2Read}`)).toEqual([events.p2Read.id]);
  });

  it("a patient's own AuditEvent scope shows the accounting of their record only, ordinary and Part 2 alike", async () => {
    const patient = await bearer({ sub: 'p1-app', patient: 'acl-p1', scope: 'patient/AuditEvent.rs' });
    const shown = idsIn((await get(patient, '/fhir/AuditEvent?agent=Practitioner/acl-doc').expect(200)).body as Bundle);
    expect(shown).toEqual([events.p1Read.id, events.part2Read.id].sort());
  });

  it('the audit of a Part 2 record is hidden from an auditor not cleared for it', async () => {
    const uncleared = await bearer({ sub: 'junior-auditor', scope: 'system/AuditEvent.rs' });
    const shown = idsIn(
      (await get(uncleared, '/fhir/AuditEvent?agent=Practitioner/acl-doc').expect(200)).body as Bundle,
    );
    expect(shown).toEqual([events.p1Read.id, events.p2Read.id].sort());
    expectOutcome(await get(uncleared, `/fhir/AuditEvent/${events.part2Read.id}`), 404);
    const part2Cleared = await bearer({ sub: 'auditor-2', scope: 'system/AuditEvent.rs', clearance: ['42CFRPart2'] });
    await get(part2Cleared, `/fhir/AuditEvent/${events.part2Read.id}`).expect(200);
  });
});

describe('the history of the audit trail', () => {
  it('each event is its only version: vread and history answer from the event itself, with no history copy', async () => {
    const { id } = events.p1Read;
    const vread = await get(auditor, `/fhir/AuditEvent/${id}/_history/1`).expect(200);
    expect(vread.body).toEqual(events.p1Read);
    expectOutcome(await get(auditor, `/fhir/AuditEvent/${id}/_history/2`), 404);
    const instance = (await get(auditor, `/fhir/AuditEvent/${id}/_history`).expect(200)).body as Bundle;
    expect(instance.entry?.map((e) => [e.resource?.id, e.request?.method])).toEqual([[id, 'POST']]);
    const copies = await server.running.connection.db
      .collection(HISTORY_COLLECTION)
      .countDocuments({ type: 'AuditEvent', id });
    expect(copies).toBe(0);
    // The auditor's scope reaches AuditEvents only, and system history leaves them to their type's.
    const system = (await get(auditor, '/fhir/_history?_count=1000').expect(200)).body as Bundle;
    expect(system.entry ?? []).toEqual([]);
  });

  it("pages through the type's history newest first, and hides what the requester may not see", async () => {
    const seen: string[] = [];
    let next: string | undefined = '/fhir/AuditEvent/_history?_count=2';
    while (next) {
      const page = (await get(auditor, next).expect(200)).body as Bundle;
      expect((page.entry ?? []).length).toBeLessThanOrEqual(2);
      seen.push(...(page.entry ?? []).map((e) => e.resource?.id as string));
      const url = page.link?.find((l) => l.relation === 'next')?.url;
      next = url ? url.replace(/^https?:\/\/[^/]+/, '') : undefined;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(Object.values(events).map((e) => e.id)));
    const uncleared = await bearer({ sub: 'junior-auditor', scope: 'system/AuditEvent.rs' });
    expectOutcome(await get(uncleared, `/fhir/AuditEvent/${events.part2Read.id}/_history/1`), 404);
    const history = (await get(uncleared, '/fhir/AuditEvent/_history?_count=1000').expect(200)).body as Bundle;
    expect(idsIn(history)).toEqual(expect.arrayContaining([events.p1Read.id, events.p2Read.id]));
    expect(idsIn(history)).not.toContain(events.part2Read.id);
  });
});
