import type { Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import type { PlannedWrite } from '../../src/store/resource-store';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { comparableRows, isShareable, loadSuite, type SuiteCase, type SuiteFile } from '../support/sql-on-fhir-suite';

/**
 * Every shareable case of the official suite through POST /fhir/$viewdefinition-run: the case's
 * resources are stored (straight through the store: the suite's resources are examples, not all of
 * them valid R4, and what is tested here is the run), the view is sent inline, and the rows that come
 * back are compared as the suite prescribes (as a multiset). Cases that expect an error must get a
 * 4xx OperationOutcome.
 */
const suite = loadSuite();
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer(__filename);
  // The suite's views read every resource of a type: the Measures shipped in measures/ are not its data.
  const shipped = await server.running.connection.db
    .collection<{ resource: Resource }>('Measure')
    .find({ deleted: { $ne: true } })
    .toArray();
  await store(
    shipped.map((d) => d.resource),
    'DELETE',
  );
});
afterAll(async () => {
  await server.close();
});

/** A stored resource has an id: the suite's few without one get one (no case of theirs reads it). */
function withIds(file: SuiteFile): Resource[] {
  return file.resources.map((r, i) => (r.id ? r : { ...r, id: `suite-${i}` }));
}

async function store(resources: Resource[], method: 'PUT' | 'DELETE'): Promise<void> {
  const writes: PlannedWrite[] = [];
  for (const r of resources) {
    const previous = await server.running.context.store.read(r.resourceType, r.id as string);
    writes.push({
      type: r.resourceType,
      id: r.id as string,
      method,
      previous,
      resource: method === 'PUT' ? r : undefined,
    });
  }
  await server.running.context.store.commit(writes);
}

function run(c: SuiteCase) {
  return request(server.app)
    .post('/fhir/$viewdefinition-run')
    .set('Content-Type', FHIR_JSON)
    .send({
      resourceType: 'Parameters',
      parameter: [
        { name: 'viewResource', resource: { resourceType: 'ViewDefinition', ...c.view } },
        { name: '_format', valueCode: 'json' },
      ],
    });
}

describe.each(suite.map((f) => [f.file, f] as const))('%s', (_name, file: SuiteFile) => {
  const cases = file.cases.filter(isShareable);
  beforeAll(() => store(withIds(file), 'PUT'));
  afterAll(() => store(withIds(file), 'DELETE'));

  if (!cases.length) {
    it('has no shareable case', () => expect(file.cases.every((c) => !isShareable(c))).toBe(true));
    return;
  }
  it.each(cases.map((c) => [c.title, c] as const))('%s', async (_title, c) => {
    const response = await run(c);
    if (c.expectError) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      expect(response.body.resourceType).toBe('OperationOutcome');
      expect(response.body.issue[0].expression?.[0]).toMatch(/^ViewDefinition/);
      return;
    }
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const rows = JSON.parse(response.text) as Record<string, unknown>[];
    if (c.expectColumns) for (const row of rows) expect(Object.keys(row)).toEqual(c.expectColumns);
    if (c.expectCount !== undefined) expect(rows).toHaveLength(c.expectCount);
    if (c.expect) expect(comparableRows(rows)).toEqual(comparableRows(c.expect));
  });
});
