import type { Bundle, MedicationRequest } from '@medplum/fhirtypes';
import { MongoClient, type Db, type Document } from 'mongodb';
import { compileSearch, search, SearchParameterRegistry, searchIndexes } from '../../src/search';
import { keysetFilter } from '../../src/search/paging';
import { pageQuery } from '../../src/search/search';
import { databaseNameFor } from '../support/server';
import { BASE, load, type Fixture } from './fixtures';

/**
 * Search pages through the embedded engine's sorted, limited finds (tools/ferretdb/patch/
 * order_medsfhir.go: the first rows chosen by SQLite's ORDER BY and LIMIT when the filter is exact in
 * SQL, keyset conditions included). Walking every page by its next links, forwards and back, must give
 * exactly the matches in FHIR's order (computed here from the fixtures): missing dates first when
 * ascending and last when descending, ties broken by id, deleted resources left out.
 */
let client: MongoClient;
let db: Db;
let ferret = false;
const registry = new SearchParameterRegistry();
const dbName = databaseNameFor(__filename);
const options = { maxCount: 50, defaultCount: 10, pageSecret: 'sort-pushdown-secret' };

const requests: (Fixture & { resource: MedicationRequest })[] = Array.from({ length: 37 }, (_, i) => ({
  resource: {
    resourceType: 'MedicationRequest',
    id: `sp-${String((i * 7) % 37).padStart(2, '0')}`,
    status: i % 4 === 0 ? 'completed' : 'active',
    intent: 'order',
    subject: { reference: `Patient/pat-${1 + (i % 2)}` },
    medicationCodeableConcept: { text: 'x' },
    // Several share a day (ties), some have none (missing sort values).
    ...(i % 6 === 0 ? {} : { authoredOn: `2023-02-${String(1 + Math.floor(i / 3)).padStart(2, '0')}` }),
  },
  deleted: i % 9 === 4,
}));

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  ferret = (await db.admin().command({ buildInfo: 1 })).ferretdbVersion !== undefined;
  // Half before the medication set's indexes (their backfill), half after (the triggers).
  await load(db, registry, requests.slice(0, 18));
  for (const index of searchIndexes('MedicationRequest')) {
    await db.collection('MedicationRequest').createIndex(index.key, { name: index.name });
  }
  await load(db, registry, requests.slice(18));
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

const run = (query: string): Promise<Bundle> =>
  search(
    db,
    { resourceType: 'MedicationRequest', params: new URLSearchParams(query), baseUrl: BASE },
    registry,
    options,
  );
const ids = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource?.id);
const linkOf = (b: Bundle, relation: string) => b.link?.find((l) => l.relation === relation)?.url;
const follow = (url: string) => run(new URL(url).search.slice(1));

/** The matches in FHIR's order: by authoredOn (missing lowest) in the given direction, then id. */
function expected(keep: (r: MedicationRequest) => boolean, direction: 1 | -1 | 0): string[] {
  const live = requests.filter((f) => !f.deleted && keep(f.resource)).map((f) => f.resource);
  return live
    .sort((a, b) => {
      const x = a.authoredOn ?? '';
      const y = b.authoredOn ?? '';
      const byDate = direction === 0 || x === y ? 0 : (x < y ? -1 : 1) * direction;
      return byDate !== 0 ? byDate : (a.id! < b.id! ? -1 : 1) * (direction === -1 ? -1 : 1);
    })
    .map((r) => r.id!);
}

async function walk(query: string): Promise<{ forwards: string[]; backwards: string[]; pages: number }> {
  const forwards: string[] = [];
  let page = await run(query);
  const pages: Bundle[] = [page];
  for (;;) {
    forwards.push(...(ids(page) as string[]));
    const next = linkOf(page, 'next');
    if (!next) break;
    page = await follow(next);
    pages.push(page);
  }
  let back = pages[pages.length - 1];
  const backwards = [...(ids(back) as string[])];
  while (linkOf(back, 'previous')) {
    back = await follow(linkOf(back, 'previous') as string);
    backwards.unshift(...(ids(back) as string[]));
  }
  return { forwards, backwards, pages: pages.length };
}

const CASES: [string, (r: MedicationRequest) => boolean, 1 | -1 | 0][] = [
  ['status=active&_sort=-authoredon&_count=4', (r) => r.status === 'active', -1],
  ['status=active&_sort=authoredon&_count=5', (r) => r.status === 'active', 1],
  ['_sort=-authoredon&_count=6', () => true, -1],
  ['_sort=authoredon&_count=7', () => true, 1],
  ['status=active&_count=4', (r) => r.status === 'active', 0],
  ['patient=Patient/pat-2&_sort=-authoredon&_count=3', (r) => r.subject?.reference === 'Patient/pat-2', -1],
];

describe('search pages ordered and limited by the engine', () => {
  it.each(CASES)('%s: every page by its next and previous links, in order', async (query, keep, direction) => {
    const want = expected(keep, direction);
    expect(want.length).toBeGreaterThan(10);
    const { forwards, backwards, pages } = await walk(query);
    expect(pages).toBeGreaterThan(2);
    expect(forwards).toEqual(want);
    expect(backwards).toEqual(want);
  });

  it('the first page and a keyset page are answered in SQL by the engine', async () => {
    const compiled = await compileSearch(
      db,
      {
        resourceType: 'MedicationRequest',
        params: new URLSearchParams('status=active&_sort=-authoredon&_count=4'),
        baseUrl: BASE,
      },
      registry,
      options,
    );
    const filter = compiled.filters.get('MedicationRequest')!;
    const first = pageQuery(filter, compiled.fields, undefined, 'MedicationRequest');
    const firstAnswer = await db.command({
      find: 'MedicationRequest',
      filter: first.filter,
      sort: first.sort,
      limit: 5,
    });
    const firstBatch = (firstAnswer.cursor as { firstBatch: Document[] }).firstBatch;
    const want = expected((r) => r.status === 'active', -1);
    expect(firstBatch.map((doc) => doc._id)).toEqual(want.slice(0, 5));
    // After the fourth match, as a next link's token says.
    const fourth = firstBatch[3];
    const cursor = {
      query: '',
      values: [fourth.sp._sort.authoredon ?? null],
      type: 'MedicationRequest',
      id: fourth._id as string,
      direction: 'next' as const,
    };
    const keyset = { $and: [filter, keysetFilter(compiled.fields, cursor, 'MedicationRequest', false)] };
    const nextAnswer = await db.command({ find: 'MedicationRequest', filter: keyset, sort: first.sort, limit: 5 });
    const nextBatch = (nextAnswer.cursor as { firstBatch: Document[] }).firstBatch;
    expect(nextBatch.map((doc) => doc._id)).toEqual(want.slice(4, 9));
    expect(firstAnswer.medsfhirOrderPushdown === true).toBe(ferret);
    expect(nextAnswer.medsfhirOrderPushdown === true).toBe(ferret);
  });
});
