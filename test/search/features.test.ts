import type { Bundle, OperationOutcome, SearchParameter } from '@medplum/fhirtypes';
import { MongoClient, type Db } from 'mongodb';
import { FhirError } from '../../src/fhir/outcome';
import { reindex, search, SearchParameterRegistry, type SearchRequest } from '../../src/search';
import { databaseNameFor } from '../support/server';
import { BASE, documentOf, load, type Fixture } from './fixtures';

let client: MongoClient;
let db: Db;
const registry = new SearchParameterRegistry();
const dbName = databaseNameFor(__filename);
const options = { maxCount: 20, defaultCount: 10, pageSecret: 'features-secret' };

/** 25 extra MedicationRequests with authoredOn spread over days, some sharing a day (tie-breaks). */
const many: Fixture[] = Array.from({ length: 25 }, (_, i) => ({
  resource: {
    resourceType: 'MedicationRequest',
    id: `bulk-${String(i).padStart(2, '0')}`,
    status: i % 5 === 0 ? 'completed' : 'active',
    intent: 'order',
    subject: { reference: 'Patient/pat-3' },
    medicationReference: { reference: 'Medication/med-bup' },
    ...(i % 7 === 0 ? {} : { authoredOn: `2023-01-${String(10 + Math.floor(i / 2)).padStart(2, '0')}` }),
  },
}));

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  await load(db, registry);
  await load(db, registry, many);
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

function run(
  type: string | undefined,
  query: string,
  extra: Partial<SearchRequest> = {},
  opts = options,
): Promise<Bundle> {
  return search(
    db,
    { resourceType: type, params: new URLSearchParams(query), baseUrl: BASE, ...extra },
    registry,
    opts,
  );
}
const ids = (b: Bundle, mode = 'match') =>
  (b.entry ?? []).filter((e) => e.search?.mode === mode).map((e) => e.resource?.id);
const linkOf = (b: Bundle, relation: string) => b.link?.find((l) => l.relation === relation)?.url;
const follow = (url: string) => {
  const u = new URL(url);
  const type = u.pathname.slice(new URL(BASE).pathname.length + 1) || undefined;
  return run(type, u.search.slice(1));
};

async function expectBadRequest(promise: Promise<unknown>, text: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FhirError);
  expect((error as FhirError).status).toBe(400);
  expect((error as FhirError).message).toMatch(text);
}

describe('sorting and cursor paging', () => {
  it('walks every page forwards then backwards with no gaps or repeats, sorted by -authoredon then _id', async () => {
    const query = 'patient=Patient/pat-3&_sort=-authoredon&_count=4&_total=accurate';
    const all = await run('MedicationRequest', 'patient=Patient/pat-3&_sort=-authoredon&_count=20&_total=none');
    const expected = ids(all);
    expect(expected).toHaveLength(20);
    const seen: (string | undefined)[] = [];
    let page = await run('MedicationRequest', query);
    expect(page.total).toBe(25);
    expect(linkOf(page, 'previous')).toBeUndefined();
    const pages: Bundle[] = [page];
    for (;;) {
      seen.push(...ids(page));
      const next = linkOf(page, 'next');
      if (!next) break;
      page = await follow(next);
      expect(page.total).toBe(25); // carried by the token
      pages.push(page);
    }
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    expect(seen.slice(0, 20)).toEqual(expected);
    // resources without authoredOn sort last when descending (MongoDB: null lowest)
    expect(seen.slice(-4).sort()).toEqual(['bulk-00', 'bulk-07', 'bulk-14', 'bulk-21']);
    // back from the last page
    let back = pages[pages.length - 1];
    const backwards: (string | undefined)[] = [...ids(back)];
    while (linkOf(back, 'previous')) {
      back = await follow(linkOf(back, 'previous') as string);
      backwards.unshift(...ids(back));
    }
    expect(backwards).toEqual(seen);
  });

  it('sorts on several keys, ascending and descending', async () => {
    const b = await run('MedicationRequest', 'patient=Patient/pat-1,Patient/pat-2&_sort=status,-_lastUpdated');
    expect(ids(b)).toEqual(['mr-3', 'mr-1', 'mr-2']);
    const c = await run('Patient', '_sort=-birthdate');
    expect(ids(c)).toEqual(['pat-1', 'pat-2', 'pat-3']);
  });

  it('caps _count at the maximum and states the applied value in the self link', async () => {
    const b = await run('MedicationRequest', '_count=500&_total=none');
    expect(ids(b)).toHaveLength(20);
    expect(linkOf(b, 'self')).toBe(`${BASE}/MedicationRequest?_count=20&_total=none`);
  });

  it('rejects altered tokens and tokens of another search', async () => {
    const b = await run('MedicationRequest', 'status=active&_count=2');
    const next = new URL(linkOf(b, 'next') as string);
    const token = next.searchParams.get('_cursor') as string;
    await expectBadRequest(run('MedicationRequest', `status=active&_count=2&_cursor=${token}x`), /not valid/);
    await expectBadRequest(run('MedicationRequest', `status=completed&_count=2&_cursor=${token}`), /another search/);
  });

  it('pages a system-level search across types', async () => {
    const first = await run(undefined, '_type=Patient,Medication&_count=3&_sort=_lastUpdated');
    const second = await follow(linkOf(first, 'next') as string);
    expect([...ids(first), ...ids(second)]).toEqual(['med-bup', 'med-nal', 'pat-1', 'pat-2', 'pat-3']);
  });
});

describe('includes', () => {
  it('_include adds the referenced Medications once, marked include', async () => {
    const b = await run('MedicationRequest', 'patient=Patient/pat-1&_include=MedicationRequest:medication');
    expect(ids(b).sort()).toEqual(['mr-1', 'mr-2']);
    expect(ids(b, 'include').sort()).toEqual(['med-bup', 'med-nal']);
  });

  it('_include with a target type and _include=* ', async () => {
    const b = await run('MedicationRequest', '_id=mr-1&_include=MedicationRequest:subject:Patient');
    expect(ids(b, 'include')).toEqual(['pat-1']);
    const all = await run('MedicationRequest', '_id=mr-1&_include=*');
    expect(ids(all, 'include').sort()).toEqual(['med-bup', 'pat-1']);
  });

  it('_revinclude and _include:iterate', async () => {
    const b = await run(
      'MedicationRequest',
      '_id=mr-1&_revinclude=MedicationDispense:prescription&_include:iterate=MedicationDispense:medication',
    );
    expect(ids(b, 'include').sort()).toEqual(['md-1', 'md-2', 'med-bup']);
    const plain = await run(
      'MedicationRequest',
      '_id=mr-1&_revinclude=MedicationDispense:prescription&_include=MedicationDispense:medication',
    );
    expect(ids(plain, 'include').sort()).toEqual(['md-1', 'md-2']);
  });

  it('rejects an include of a non-reference parameter', async () => {
    await expectBadRequest(run('MedicationRequest', '_include=MedicationRequest:status'), /no reference parameter/);
  });
});

describe('result parameters', () => {
  it('_summary=count gives only the total', async () => {
    const b = await run('MedicationRequest', 'status=active&_summary=count');
    expect(b.total).toBe(22);
    expect(b.entry).toBeUndefined();
  });

  it('_total=none leaves the total out; _total=estimate counts', async () => {
    expect((await run('Patient', '_total=none')).total).toBeUndefined();
    expect((await run('Patient', '_total=estimate')).total).toBe(3);
  });

  it('_summary=true keeps summary elements and marks the resource SUBSETTED', async () => {
    const b = await run('Patient', '_id=pat-2&_summary=true');
    const patient = b.entry?.[0].resource as unknown as Record<string, unknown>;
    expect(patient.name).toBeDefined();
    expect(patient.managingOrganization).toBeDefined();
    expect(JSON.stringify(patient.meta)).toContain('SUBSETTED');
  });

  it('_elements keeps the listed elements, id and meta', async () => {
    const b = await run('MedicationRequest', '_id=mr-1&_elements=status,subject');
    expect(Object.keys(b.entry?.[0].resource ?? {}).sort()).toEqual(
      // intent and medication[x] are mandatory (min 1), so they stay
      ['id', 'intent', 'medicationReference', 'meta', 'resourceType', 'status', 'subject'].sort(),
    );
  });
});

describe('errors and lenient handling', () => {
  it.each([
    ['MedicationRequest', 'bogus=1', /Unknown search parameter/],
    ['MedicationRequest', 'authoredon=yesterday', /Invalid value/],
    ['MedicationRequest', 'status:exact=active', /not supported/],
    ['RiskAssessment', 'probability=abc', /not a number/],
    ['MedicationRequest', '_sort=bogus', /Cannot sort/],
    ['MedicationRequest', '_count=-1', /_count/],
    ['MedicationRequest', '_total=maybe', /_total/],
    ['MedicationRequest', '_contained=true', /not supported/],
    ['Medication', 'code:in=http://nowhere/vs', /No ValueSet/],
  ])('%s?%s is a 400', async (type, query, text) => {
    await expectBadRequest(run(type, query), text);
  });

  it('lenient: ignores unknown parameters, reports them, and leaves them out of the self link', async () => {
    const b = await run('MedicationRequest', 'bogus=1&status=stopped', { lenient: true });
    expect(ids(b)).toEqual(['mr-2']);
    expect(linkOf(b, 'self')).toBe(`${BASE}/MedicationRequest?status=stopped`);
    const outcome = b.entry?.find((e) => e.search?.mode === 'outcome')?.resource as OperationOutcome;
    expect(outcome.issue?.[0].details?.text).toMatch(/bogus/);
  });
});

describe('runtime SearchParameter and reindex', () => {
  it('is not searchable until reindexed, then finds existing and new resources', async () => {
    const definition: SearchParameter = {
      resourceType: 'SearchParameter',
      url: 'http://example.org/SearchParameter/mr-intent-text',
      name: 'intentCode',
      status: 'active',
      code: 'intent-code',
      base: ['MedicationRequest'],
      type: 'token',
      expression: 'MedicationRequest.intent',
      description: 'test',
    };
    const param = registry.add(definition);
    await expectBadRequest(run('MedicationRequest', 'intent-code=order'), /reindexed/);
    const progress: number[] = [];
    expect(await reindex(db, registry, param, { onProgress: (p) => progress.push(p.done) })).toBe(true);
    expect(param.status).toBe('active');
    expect(progress[progress.length - 1]).toBe(29); // 4 fixtures (one deleted) + 25 bulk
    const b = await run('MedicationRequest', 'intent-code=order&_total=accurate');
    expect(b.total).toBe(28);
    // a write after the reindex is indexed by extraction
    const doc = documentOf(
      {
        resource: {
          resourceType: 'MedicationRequest',
          id: 'late',
          status: 'draft',
          intent: 'plan',
          subject: { reference: 'Patient/pat-1' },
        },
      },
      registry,
    );
    await db.collection('MedicationRequest').insertOne(doc as never);
    expect(ids(await run('MedicationRequest', 'intent-code=plan'))).toEqual(['late']);
  });

  it('stops the reindex of a definition that a newer version replaced, and forgets the old code', async () => {
    const url = 'http://example.org/SearchParameter/mr-priority';
    const base: SearchParameter = {
      resourceType: 'SearchParameter',
      url,
      name: 'priority',
      status: 'active',
      code: 'rx-priority',
      base: ['MedicationRequest'],
      type: 'token',
      expression: 'MedicationRequest.priority',
      description: 'test',
    };
    const outdated = registry.add(base);
    const current = registry.add({ ...base, code: 'rx-urgency' });
    expect(await reindex(db, registry, outdated)).toBe(false);
    expect(registry.get('MedicationRequest', 'rx-priority', true)).toBeUndefined();
    expect(current.status).toBe('reindexing');
    expect(await reindex(db, registry, current)).toBe(true);
    expect(registry.get('MedicationRequest', 'rx-urgency')).toBe(current);
    expect(registry.conflictOf({ ...base, url: 'http://example.org/other', code: 'rx-urgency' })).toMatch(url);
    expect(registry.conflictOf({ ...base, code: 'rx-urgency' })).toBeUndefined();
  });
});
