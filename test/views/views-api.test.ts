import type { Bundle, MedicationRequest, Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { VIEW_BATCH } from '../../src/views/run';
import { authorizationOf, loadWorld, PERSONAS, RECORDS } from '../auth/fixtures';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { tokenFor } from '../support/tokens';

let server: TestServer;
const BASE = 'https://meds-fhir.org/fhir/ViewDefinition/';

/** A small view of MedicationRequests: its id and its patient. */
const RX_VIEW = {
  resourceType: 'ViewDefinition',
  name: 'rx_ids',
  status: 'active',
  resource: 'MedicationRequest',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()', type: 'id' },
        { name: 'patient_id', path: 'subject.getReferenceKey(Patient)', type: 'id' },
      ],
    },
  ],
};

function runInline(view: object, extra: object[] = [], authorization?: string) {
  const call = request(authorization ? server.rawApp : server.app)
    .post('/fhir/$viewdefinition-run')
    .set('Content-Type', FHIR_JSON);
  if (authorization) call.set('Authorization', authorization);
  return call.send({ resourceType: 'Parameters', parameter: [{ name: 'viewResource', resource: view }, ...extra] });
}

async function put(resource: Resource): Promise<void> {
  const response = await request(server.app)
    .put(`/fhir/${resource.resourceType}/${resource.id}`)
    .set('Content-Type', FHIR_JSON)
    .send(resource);
  if (response.status >= 300) throw new Error(`${response.status} ${JSON.stringify(response.body)}`);
}

function dispense(id: string, patient: string, day: string, extra: object = {}): Resource {
  return {
    resourceType: 'MedicationDispense',
    id,
    status: 'completed',
    medicationCodeableConcept: {
      coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1010600' }],
      text: 'buprenorphine / naloxone 8 mg / 2 mg',
    },
    subject: { reference: `Patient/${patient}` },
    whenHandedOver: `${day}T10:00:00Z`,
    daysSupply: { value: 28, unit: 'day', system: 'http://unitsofmeasure.org', code: 'd' },
    quantity: { value: 56, unit: 'film' },
    ...extra,
  } as Resource;
}

beforeAll(async () => {
  server = await startTestServer(__filename);
  await loadWorld(server.app);
  await put({ resourceType: 'Patient', id: 'v-p1', name: [{ family: 'Viewer' }] });
  await put({ resourceType: 'Patient', id: 'v-p2', name: [{ family: 'Viewer' }] });
  await put(dispense('v-d1', 'v-p1', '2026-03-01'));
  await put(dispense('v-d2', 'v-p1', '2026-03-29'));
  await put(dispense('v-d3', 'v-p2', '2026-04-02'));
  await put({
    resourceType: 'Group',
    id: 'v-group',
    type: 'person',
    actual: true,
    member: [{ entity: { reference: 'Patient/v-p2' } }],
  });
});
afterAll(async () => {
  await server.close();
});

describe('shipped ViewDefinitions', () => {
  it.each(['prescriptions', 'dispenses', 'medication-statements', 'drug-screens', 'phq9-scores'])(
    '%s is stored at start-up under its canonical url',
    async (id) => {
      const response = await request(server.app).get(`/fhir/ViewDefinition/${id}`);
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ resourceType: 'ViewDefinition', url: `${BASE}${id}`, status: 'active' });
    },
  );

  it('the dispenses view gives days supply and fill dates, as CSV with a header', async () => {
    const response = await request(server.app)
      .get('/fhir/ViewDefinition/dispenses/$viewdefinition-run')
      .query({ _format: 'csv', patient: 'v-p1' });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/csv/);
    const [header, ...lines] = response.text.trimEnd().split('\r\n');
    const names = header.split(',');
    expect(names).toEqual(expect.arrayContaining(['id', 'patient_id', 'days_supply', 'handed_over_at', 'rxnorm_code']));
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [names[i], v])));
    expect(rows.map((r) => r.id).sort()).toEqual(['v-d1', 'v-d2']);
    expect(rows.find((r) => r.id === 'v-d2')).toMatchObject({
      patient_id: 'v-p1',
      days_supply: '28',
      handed_over_at: '2026-03-29T10:00:00Z',
      rxnorm_code: '1010600',
      medication_text: '"buprenorphine / naloxone 8 mg / 2 mg"'.replace(/"/g, ''),
    });
  });

  it('a system-level run takes a viewReference (by reference or canonical url)', async () => {
    for (const reference of ['ViewDefinition/dispenses', `${BASE}dispenses`]) {
      const response = await request(server.app)
        .get('/fhir/$viewdefinition-run')
        .query({ viewReference: reference, patient: 'Patient/v-p2', _format: 'ndjson' });
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/x-ndjson/);
      const rows = response.text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(rows).toEqual([expect.objectContaining({ id: 'v-d3', patient_id: 'v-p2', days_supply: 28 })]);
    }
  });
});

describe('parameters', () => {
  const ids = async (extra: object[]) => {
    const response = await runInline({ ...RX_VIEW, resource: 'MedicationDispense' }, extra);
    expect(response.status).toBe(200);
    return (JSON.parse(response.text) as { id: string }[]).map((r) => r.id).sort();
  };

  it('group restricts to the compartments of its Patient members', async () => {
    expect(await ids([{ name: 'group', valueReference: { reference: 'Group/v-group' } }])).toEqual(['v-d3']);
  });

  it('_since keeps resources updated at or after the instant', async () => {
    await put(dispense('v-d4', 'v-p2', '2026-05-01'));
    const since = (await request(server.app).get('/fhir/MedicationDispense/v-d4')).body.meta.lastUpdated as string;
    expect(await ids([{ name: '_since', valueInstant: since }])).toEqual(['v-d4']);
    expect(await ids([{ name: '_since', valueInstant: '2000-01-01T00:00:00Z' }])).toEqual(
      expect.arrayContaining(['v-d1', 'v-d4']),
    );
  });

  it('_limit cuts the rows', async () => {
    expect(await ids([{ name: '_limit', valueInteger: 2 }])).toHaveLength(2);
  });

  it('header=false leaves the CSV header out', async () => {
    const response = await runInline(RX_VIEW, [
      { name: '_format', valueCode: 'csv' },
      { name: 'header', valueBoolean: false },
      { name: 'patient', valueReference: { reference: 'Patient/acc-p1' } },
    ]);
    expect(response.status).toBe(200);
    expect(response.text.split('\r\n').filter(Boolean).sort()).toEqual(['acc-mr-p1,acc-p1', 'acc-mr-p1-part2,acc-p1']);
  });

  it('Accept chooses the format when _format is absent', async () => {
    const response = await request(server.app)
      .get('/fhir/ViewDefinition/prescriptions/$viewdefinition-run')
      .set('Accept', 'text/csv')
      .query({ patient: 'acc-p2' });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/csv/);
    expect(response.text.split('\r\n')[0]).toMatch(/^id,patient_id,status,/);
  });

  it.each([
    ['no view', [{ name: '_format', valueCode: 'json' }], 'viewReference'],
    [
      'an unknown format',
      [
        { name: 'viewReference', valueReference: { reference: 'ViewDefinition/dispenses' } },
        { name: '_format', valueCode: 'parquet' },
      ],
      'Parameters.parameter[1]',
    ],
    [
      'an unknown parameter',
      [
        { name: 'viewReference', valueReference: { reference: 'ViewDefinition/dispenses' } },
        { name: 'colour', valueString: 'red' },
      ],
      'Parameters.parameter[1]',
    ],
    [
      'a bad _since',
      [
        { name: 'viewReference', valueReference: { reference: 'ViewDefinition/dispenses' } },
        { name: '_since', valueString: 'yesterday' },
      ],
      'Parameters.parameter[1]',
    ],
  ])('%s is 400 naming the parameter', async (_name, parameter, expression) => {
    const response = await request(server.app)
      .post('/fhir/$viewdefinition-run')
      .set('Content-Type', FHIR_JSON)
      .send({ resourceType: 'Parameters', parameter });
    expect(response.status).toBe(400);
    expect(response.body.resourceType).toBe('OperationOutcome');
    expect(response.body.issue[0].expression).toEqual([expression]);
  });

  it('an unknown ViewDefinition is 404', async () => {
    const response = await request(server.app).get('/fhir/ViewDefinition/nope/$viewdefinition-run');
    expect(response.status).toBe(404);
    expect(response.body.resourceType).toBe('OperationOutcome');
  });

  it('a view that fails on the data is 422 naming the column', async () => {
    const view = {
      ...RX_VIEW,
      select: [{ column: [{ name: 'texts', path: 'dosageInstruction.text | note.text', type: 'string' }] }],
    };
    const response = await runInline(view, [{ name: 'patient', valueString: 'acc-p1' }]);
    expect(response.status).toBe(422);
    expect(response.body.issue[0].expression).toEqual(['ViewDefinition.select[0].column[0].path']);
  });
});

describe('streaming', () => {
  it(`gives every row of more resources than one batch (${VIEW_BATCH}) holds, in each format`, async () => {
    const count = VIEW_BATCH + 17;
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: Array.from({ length: count }, (_, i) => ({
        resource: dispense(`bulk-${i}`, 'v-bulk', '2026-06-01'),
        request: { method: 'PUT' as const, url: `MedicationDispense/bulk-${i}` },
      })),
    };
    await put({ resourceType: 'Patient', id: 'v-bulk' });
    expect((await request(server.app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle)).status).toBe(200);
    const view = { ...RX_VIEW, resource: 'MedicationDispense' };
    const patient = { name: 'patient', valueString: 'v-bulk' };
    const json = await runInline(view, [patient]);
    expect(new Set((JSON.parse(json.text) as { id: string }[]).map((r) => r.id)).size).toBe(count);
    const ndjson = await runInline(view, [patient, { name: '_format', valueCode: 'ndjson' }]);
    expect(ndjson.text.trimEnd().split('\n')).toHaveLength(count);
    const csv = await runInline(view, [patient, { name: '_format', valueCode: 'csv' }]);
    expect(csv.text.trimEnd().split('\r\n')).toHaveLength(count + 1);
  });

  it('a view that fails after its first batch cuts the stream short rather than end it cleanly', async () => {
    // Stored after the bulk ones: read in a later batch than the first (natural order), so the failure
    // comes after the answer has started.
    await put(dispense('bulk-two-notes', 'v-bulk', '2026-06-02', { note: [{ text: 'one' }, { text: 'two' }] }));
    const view = {
      ...RX_VIEW,
      resource: 'MedicationDispense',
      select: [{ column: [{ name: 'note', path: 'note.text', type: 'string' }] }],
    };
    const outcome = await runInline(view, [
      { name: 'patient', valueString: 'v-bulk' },
      { name: '_format', valueCode: 'ndjson' },
    ]).then(
      (response) => ({ status: response.status, body: response.text }),
      (error: Error) => ({ status: 0, body: error.message }),
    );
    // Cut: the client sees the connection end before the chunked body did (never a 200 that completes).
    expect(outcome.status).not.toBe(200);
    if (outcome.status !== 0) expect(outcome.status).toBe(422);
  });
});

describe('ViewDefinitions stored through the API', () => {
  it('a valid one is stored and runs at instance level', async () => {
    const created = await request(server.app)
      .post('/fhir/ViewDefinition')
      .set('Content-Type', FHIR_JSON)
      .send({ ...RX_VIEW, url: 'https://example.org/ViewDefinition/rx-ids' });
    expect(created.status).toBe(201);
    const run = await request(server.app)
      .get(`/fhir/ViewDefinition/${created.body.id}/$viewdefinition-run`)
      .query({ patient: 'acc-p2' });
    expect(run.status).toBe(200);
    expect(JSON.parse(run.text)).toEqual(
      expect.arrayContaining([
        { id: 'acc-mr-p2', patient_id: 'acc-p2' },
        { id: 'acc-mr-p2-part2', patient_id: 'acc-p2' },
      ]),
    );
  });

  it.each([
    [
      'a FHIRPath that does not parse',
      { ...RX_VIEW, select: [{ column: [{ name: 'id', path: 'id..', type: 'id' }] }] },
      'ViewDefinition.select[0].column[0].path',
    ],
    ['a missing resource', { ...RX_VIEW, resource: undefined }, 'ViewDefinition.resource'],
    ['an unknown resource type', { ...RX_VIEW, resource: 'Prescription' }, 'ViewDefinition.resource'],
    ['a misspelt key', { ...RX_VIEW, select: [{ colum: [] }] }, 'ViewDefinition.select[0].colum'],
    [
      'an undefined constant',
      { ...RX_VIEW, select: [{ column: [{ name: 'x', path: '%nothing', type: 'string' }] }] },
      'ViewDefinition.select[0].column[0].path',
    ],
  ])('%s is refused with 422 naming the element, and nothing is stored', async (_name, view, expression) => {
    const response = await request(server.app)
      .put('/fhir/ViewDefinition/bad-view')
      .set('Content-Type', FHIR_JSON)
      .send({ ...view, id: 'bad-view' });
    expect(response.status).toBe(422);
    expect(response.body.resourceType).toBe('OperationOutcome');
    expect(response.body.issue.flatMap((i: { expression?: string[] }) => i.expression ?? [])).toContain(expression);
    expect((await request(server.app).get('/fhir/ViewDefinition/bad-view')).status).toBe(404);
  });
});

describe('access control', () => {
  const personas = PERSONAS.filter((p) => !p.refused && p.claims);
  const rxIds = Object.entries(RECORDS)
    .filter(([, r]) => r.type === 'MedicationRequest')
    .map(([key, r]) => [key, r.id] as const);

  it.each(personas.map((p) => [p.name, p] as const))(
    '%s gets the rows of what search shows it',
    async (_n, persona) => {
      const authorization = (await authorizationOf(persona)) as string;
      const run = await runInline(RX_VIEW, [], authorization);
      expect(run.status).toBe(200);
      const viewed = (JSON.parse(run.text) as { id: string }[])
        .map((r) => r.id)
        .filter((id) => id.startsWith('acc-'))
        .sort();
      const expected = rxIds
        .filter(([key]) => persona.sees.includes(key as never))
        .map(([, id]) => id)
        .sort();
      expect(viewed).toEqual(expected);
      const search = await request(server.rawApp)
        .get('/fhir/MedicationRequest')
        .query({ _count: 100 })
        .set('Authorization', authorization);
      const searched = ((search.body as Bundle<MedicationRequest>).entry ?? [])
        .map((e) => e.resource?.id as string)
        .filter((id) => id.startsWith('acc-'))
        .sort();
      expect(viewed).toEqual(searched);
    },
  );

  it('a token with no scope on the view resource type is 403', async () => {
    const authorization = `Bearer ${await tokenFor({ sub: 'pt-only', scope: 'system/Patient.rs' })}`;
    const response = await runInline(RX_VIEW, [], authorization);
    expect(response.status).toBe(403);
    expect(response.body.resourceType).toBe('OperationOutcome');
  });
});

describe('CapabilityStatement', () => {
  it('lists $viewdefinition-run at system level and on ViewDefinition, with its OperationDefinition stored', async () => {
    const metadata = await request(server.app).get('/fhir/metadata');
    const definition = 'https://meds-fhir.org/fhir/OperationDefinition/viewdefinition-run';
    expect(metadata.body.rest[0].operation).toEqual(
      expect.arrayContaining([{ name: 'viewdefinition-run', definition }]),
    );
    const type = metadata.body.rest[0].resource.find((r: { type: string }) => r.type === 'ViewDefinition');
    expect(type.operation).toEqual(expect.arrayContaining([{ name: 'viewdefinition-run', definition }]));
    const stored = await request(server.app).get('/fhir/OperationDefinition/viewdefinition-run');
    expect(stored.status).toBe(200);
    expect(stored.body.url).toBe(definition);
  });
});
