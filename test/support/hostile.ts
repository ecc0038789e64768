/**
 * fast-check arbitraries of hostile requests: JSON whose shapes handlers might trust (entries that are
 * objects or null, urls that are numbers, Parameters without a parameter list), nesting and sizes past
 * every limit, keys that name prototypes, search queries with chains, includes, modifiers and forged
 * paging tokens, patches that copy themselves, and headers that lie (Content-Encoding, Content-Type).
 *
 * An arbitrary yields a small description (a HostileSpec) that prints and shrinks well; render() turns
 * it into the bytes to send, building the giant bodies only then. Used by test/http/hostile.test.ts
 * (through the Express app) and bench/hostile.ts (against a running server).
 */
import fc from 'fast-check';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';

/** A JSON value to render; objects are lists of pairs so that any key (`__proto__` too) can be written. */
export type JsonNode = null | boolean | number | string | JsonNode[] | { pairs: [string, JsonNode][] };

/** Bodies too large to describe value by value: built when rendered. */
export interface GiantBody {
  giant:
    | 'given-names'
    | 'identifiers'
    | 'long-string'
    | 'deep-extensions'
    | 'deep-arrays'
    | 'many-keys'
    | 'bundle-entries'
    | 'copy-doubling'
    | 'deep-patch-value';
  n: number;
}

export type BodySpec =
  | { json: JsonNode }
  | { raw: string }
  | GiantBody
  | { form: [string, string][] }
  | { encoded: 'gzip' | 'br' | 'deflate'; inner: BodySpec };

export interface HostileSpec {
  /** The family of attack, for reports. */
  kind: string;
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';
  path: string;
  query: [string, string][];
  headers: Record<string, string>;
  body?: BodySpec;
}

export interface RenderedRequest {
  method: HostileSpec['method'];
  /** Path and query below the server root: `/fhir/Patient?name=x`. */
  url: string;
  headers: Record<string, string>;
  body?: Buffer;
}

const FHIR_JSON = 'application/fhir+json';
const JSON_PATCH = 'application/json-patch+json';
const FORM = 'application/x-www-form-urlencoded';

const obj = (...pairs: [string, JsonNode][]): JsonNode => ({ pairs });

/** Strings that have broken parsers, matchers and prototype lookups before. */
const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\udfff\ud800',
  '💊',
  'é\u0301',
  '__proto__',
  'constructor',
  'prototype',
  'hashCode',
  'seed',
  'toString',
  '$where',
  '{"$ne":null}',
  '../../etc/passwd',
  '%00',
  '%E0%A4%A',
  'Patient/1',
  'Patient?identifier=urn:x|1',
  'urn:uuid:00000000-0000-4000-8000-000000000000',
  'http://meds-fhir.test/fhir/Patient/1',
  '\\,\\|\\$\\\\',
  'a,b,c',
  '((((((((((',
  "'; drop table --",
  '<script>alert(1)</script>',
  '2026-02-30',
  '9999-99-99T99:99:99Z',
];

const nastyString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
);

const scalar: fc.Arbitrary<JsonNode> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.constantFrom(1e308, -0, 2 ** 64, 0.1, -1, 2 ** 31),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  nastyString,
);

const KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'hashCode',
  'seed',
  'resourceType',
  'id',
  'meta',
  'extension',
  'url',
  'valueString',
  'entry',
  'parameter',
  'request',
  'resource',
  'reference',
  '_gender',
  '$ne',
  'a.b',
  '',
];
const key = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

/** Any small JSON, hostile keys and values included. */
const tree: fc.Arbitrary<JsonNode> = fc.letrec<{ node: JsonNode }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('node'), { maxLength: 4 }),
    fc.array(fc.tuple(key, tie('node')), { maxLength: 4 }).map((pairs) => ({ pairs })),
  ),
})).node;

/** A value that is usually right and sometimes anything at all. */
function mostly(valid: fc.Arbitrary<JsonNode>): fc.Arbitrary<JsonNode> {
  return fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: tree });
}

/** Optional members: each present or not, in the order given. */
function members(entries: [string, fc.Arbitrary<JsonNode>][]): fc.Arbitrary<[string, JsonNode][]> {
  return fc
    .tuple(
      ...entries.map(([name, value]) =>
        fc.option(
          value.map((v): [string, JsonNode] => [name, v]),
          { nil: undefined },
        ),
      ),
    )
    .map((picked) => picked.filter((p): p is [string, JsonNode] => p !== undefined));
}

const reference = fc.constantFrom(
  'Patient/hostile-1',
  'Patient/does-not-exist',
  'Patient?identifier=urn:hostile|1',
  'Patient?',
  'urn:uuid:00000000-0000-4000-8000-000000000001',
  '#contained',
  'Organization/x/_history/abc',
);

function resourceOf(type: string, ids: readonly string[]): fc.Arbitrary<JsonNode> {
  const common: [string, fc.Arbitrary<JsonNode>][] = [
    ['id', mostly(fc.constantFrom(...ids, 'new-id', 'bad id!', 'x'.repeat(65)))],
    ['meta', mostly(fc.constant(obj(['profile', ['http://unknown.example/profile']])))],
    [
      'extension',
      mostly(
        fc.array(
          fc.tuple(nastyString, nastyString).map(([u, v]) => obj(['url', u], ['valueString', v])),
          { maxLength: 3 },
        ),
      ),
    ],
  ];
  const specific: Record<string, [string, fc.Arbitrary<JsonNode>][]> = {
    Patient: [
      [
        'name',
        mostly(
          fc.array(
            fc.tuple(nastyString, nastyString).map(([f, g]) => obj(['family', f], ['given', [g]])),
            { maxLength: 3 },
          ),
        ),
      ],
      [
        'identifier',
        mostly(
          fc.array(
            nastyString.map((v) => obj(['system', 'urn:hostile'], ['value', v])),
            { maxLength: 3 },
          ),
        ),
      ],
      ['gender', mostly(fc.constantFrom('male', 'female', 'unknown', 'bogus'))],
      ['birthDate', mostly(fc.constantFrom('1980-02-03', '1980-13-45', '19800203', ''))],
      ['managingOrganization', mostly(reference.map((r) => obj(['reference', r])))],
      ['contained', mostly(fc.constant([obj(['resourceType', 'Organization'], ['id', 'contained'])]))],
    ],
    Observation: [
      ['status', mostly(fc.constantFrom('final', 'preliminary', 'bogus'))],
      ['code', mostly(fc.constant(obj(['coding', [obj(['system', 'http://loinc.org'], ['code', '1234-5'])]])))],
      ['subject', mostly(reference.map((r) => obj(['reference', r])))],
      [
        'valueQuantity',
        mostly(fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => obj(['value', v], ['unit', 'mg']))),
      ],
      ['effectiveDateTime', mostly(fc.constantFrom('2026-01-01', '2026-01-01T25:00:00Z', 'yesterday'))],
    ],
    MedicationRequest: [
      ['status', mostly(fc.constantFrom('active', 'bogus'))],
      ['intent', mostly(fc.constantFrom('order', 'bogus'))],
      ['subject', mostly(reference.map((r) => obj(['reference', r])))],
      ['medicationCodeableConcept', mostly(fc.constant(obj(['text', 'buprenorphine'])))],
    ],
  };
  const resourceType = fc.oneof(
    { weight: 8, arbitrary: fc.constant<JsonNode>(type) },
    { weight: 1, arbitrary: scalar },
  );
  return fc
    .tuple(
      resourceType,
      members([...common, ...(specific[type] ?? [])]),
      fc.array(fc.tuple(key, tree), { maxLength: 2 }),
    )
    .map(([rt, known, extra]) => ({ pairs: [['resourceType', rt], ...known, ...extra] as [string, JsonNode][] }));
}

const entryRequest = fc.tuple(
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD') },
    { weight: 1, arbitrary: scalar },
  ),
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        'Patient',
        'Patient/hostile-1',
        'Patient?identifier=urn:hostile|1',
        'Observation',
        'Patient/%E0%A4%A',
        '',
        'metadata',
        'Patient/hostile-1/_history',
      ),
    },
    { weight: 1, arbitrary: scalar },
  ),
  fc.option(mostly(fc.constantFrom('identifier=urn:hostile|1', 'Patient?name=x', '', '_count=1')), { nil: undefined }),
  fc.option(mostly(fc.constantFrom('W/"1"', 'W/"999"', 'junk')), { nil: undefined }),
);

function bundleOf(ids: readonly string[]): fc.Arbitrary<JsonNode> {
  const binaryPatch = jsonPatchOps.map((ops) =>
    obj(
      ['resourceType', 'Binary'],
      ['contentType', JSON_PATCH],
      ['data', Buffer.from(renderJson(ops)).toString('base64')],
    ),
  );
  const entry = fc.oneof(
    { weight: 1, arbitrary: scalar },
    {
      weight: 8,
      arbitrary: fc
        .tuple(
          fc.option(mostly(fc.constantFrom('urn:uuid:00000000-0000-4000-8000-000000000001', 'Patient/hostile-1')), {
            nil: undefined,
          }),
          entryRequest,
          fc.option(fc.oneof(resourceOf('Patient', ids), resourceOf('Observation', ids), binaryPatch, tree), {
            nil: undefined,
          }),
        )
        .map(([fullUrl, [method, url, ifNoneExist, ifMatch], resource]) => {
          const request: [string, JsonNode][] = [
            ['method', method],
            ['url', url],
          ];
          if (ifNoneExist !== undefined) request.push(['ifNoneExist', ifNoneExist]);
          if (ifMatch !== undefined) request.push(['ifMatch', ifMatch]);
          const pairs: [string, JsonNode][] = [['request', { pairs: request }]];
          if (fullUrl !== undefined) pairs.unshift(['fullUrl', fullUrl]);
          if (resource !== undefined) pairs.push(['resource', resource]);
          return { pairs };
        }),
    },
  );
  return fc
    .tuple(
      mostly(fc.constantFrom('batch', 'transaction', 'batch', 'transaction', 'collection')),
      fc.oneof(
        { weight: 5, arbitrary: fc.array(entry, { maxLength: 6 }) },
        { weight: 1, arbitrary: tree },
        { weight: 1, arbitrary: entry },
      ),
    )
    .map(([type, entries]) => obj(['resourceType', 'Bundle'], ['type', type], ['entry', entries]));
}

const POINTERS = [
  '/gender',
  '/name/0/family',
  '/name/0/family/seed',
  '/gender/length',
  '/name/-',
  '/name/99',
  '/__proto__/polluted',
  '/constructor/prototype/polluted',
  '/extension',
  '/id',
  '/resourceType',
  '',
  '/',
  'gender',
  '/name/01',
  '/~2',
];
const pointer = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...POINTERS) }, { weight: 1, arbitrary: nastyString });

const jsonPatchOps: fc.Arbitrary<JsonNode> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.array(
      fc
        .tuple(
          mostly(fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', '_get')),
          pointer,
          fc.option(pointer, { nil: undefined }),
          fc.option(tree, { nil: undefined }),
        )
        .map(([op, path, from, value]) => {
          const pairs: [string, JsonNode][] = [
            ['op', op],
            ['path', path],
          ];
          if (from !== undefined) pairs.push(['from', from]);
          if (value !== undefined) pairs.push(['value', value]);
          return { pairs };
        }),
      { maxLength: 5 },
    ),
  },
  { weight: 1, arbitrary: tree },
);

const FHIRPATHS = [
  'Patient.gender',
  'Patient.name[0].family',
  'Patient.gender.seed',
  'Patient.name.family.hashCode',
  'Patient.constructor()',
  'Patient.name.descendants()',
  "Patient.name.where(family.startsWith('a'))",
  'Patient.text.div',
  'Patient',
  '((((',
  `Patient${'.name'.repeat(50)}`,
  `${'('.repeat(3000)}Patient${')'.repeat(3000)}`,
  'Patient.name.select($this.repeat(name))',
  '%resource.id',
  'resolve()',
];

const fhirPathPatch: fc.Arbitrary<JsonNode> = fc
  .array(
    fc
      .tuple(
        mostly(fc.constant<JsonNode>('operation')),
        mostly(fc.constantFrom('add', 'insert', 'delete', 'replace', 'move', 'upsert')),
        mostly(fc.constantFrom(...FHIRPATHS)),
        fc.option(mostly(fc.constantFrom('given', 'extension', '__proto__', 'constructor')), { nil: undefined }),
        fc.option(
          fc.oneof(
            fc.constantFrom<JsonNode>(obj(['name', 'value'], ['valueCode', 'male'])),
            fc.constantFrom<JsonNode>(
              obj(['name', 'value'], ['valueString', 'x']),
              obj(['name', 'value'], ['resource', obj(['resourceType', 'Patient'])]),
            ),
          ),
          { nil: undefined },
        ),
        fc.option(mostly(fc.integer({ min: -2, max: 5 })), { nil: undefined }),
      )
      .map(([operation, type, path, name, value, index]) => {
        const parts: JsonNode[] = [
          obj(['name', 'type'], ['valueCode', type]),
          obj(['name', 'path'], ['valueString', path]),
        ];
        if (name !== undefined) parts.push(obj(['name', 'name'], ['valueString', name]));
        if (value !== undefined) parts.push(value);
        if (index !== undefined) parts.push(obj(['name', 'index'], ['valueInteger', index]));
        return obj(['name', operation], ['part', parts]);
      }),
    { maxLength: 4 },
  )
  .chain((operations) =>
    fc.oneof(
      { weight: 5, arbitrary: fc.constant<JsonNode>(obj(['resourceType', 'Parameters'], ['parameter', operations])) },
      { weight: 1, arbitrary: tree.map((weird) => obj(['resourceType', 'Parameters'], ['parameter', weird])) },
      { weight: 1, arbitrary: fc.constant<JsonNode>(null) },
    ),
  );

const reviewParameters: fc.Arbitrary<JsonNode> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .array(
        fc
          .tuple(
            mostly(fc.constantFrom('date', 'periodStart', 'periodEnd', 'colour')),
            mostly(fc.constantFrom('2026-06-30', '2026-02-30', '2026-1-1')),
          )
          .map(([name, value]) => obj(['name', name], ['valueDate', value])),
        { maxLength: 4 },
      )
      .map((parameter) => obj(['resourceType', 'Parameters'], ['parameter', parameter])),
  },
  { weight: 1, arbitrary: tree.map((weird) => obj(['resourceType', 'Parameters'], ['parameter', weird])) },
  { weight: 1, arbitrary: fc.constant<JsonNode>(null) },
);

const SEARCH_NAMES = [
  'name',
  'family',
  'family:exact',
  'name:contains',
  'identifier',
  'identifier:of-type',
  'gender:not',
  'gender:missing',
  'birthdate',
  '_id',
  '_lastUpdated',
  'code:text',
  'code:in',
  'subject',
  'subject:Patient.name',
  'subject:Patient.organization.name',
  'patient.general-practitioner.name',
  '_has:Observation:patient:code',
  '_has:Observation:patient:_has:AuditEvent:entity:agent',
  '_include',
  '_include:iterate',
  '_revinclude',
  '_sort',
  '_count',
  '_total',
  '_summary',
  '_elements',
  '_type',
  '_cursor',
  '_format',
  '_pretty',
  '_filter',
  '_junk',
  'name:junk',
  'constructor',
  '__proto__',
];
const SEARCH_VALUES = [
  'rivera',
  'Rivera',
  'a\\,b',
  'x|y|z',
  'urn:hostile|1',
  '|1',
  'ge2020-01-01',
  'ap2026',
  'gt-1e400',
  'true',
  'Observation:subject',
  'Observation:subject:Patient',
  '*',
  'Junk:thing',
  'name,-birthdate',
  '-_lastUpdated',
  '0',
  '1000000',
  '-1',
  '1e3',
  'accurate',
  'count',
  'Patient,Observation,Junk',
  'eyJxIjoiIn0.AAAAAAAAAAAAAAAAAAAAAA',
  'eyJx.ééééééééééééééééééééé',
  'ü.ü',
  'xml',
  'http://loinc.org|1234-5',
];
const searchPair = fc.tuple(
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...SEARCH_NAMES) },
    { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
  ),
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...SEARCH_VALUES) },
    { weight: 2, arbitrary: nastyString },
    { weight: 1, arbitrary: fc.constantFrom(100, 4_000, 5_000).map((n) => 'a'.repeat(n)) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 90, max: 120 }).map((n) => Array.from({ length: n }, (_, i) => `v${i}`).join(',')),
    },
  ),
);

/** Header values clients can send (visible ASCII), some of them lies; most requests send none of them. */
const headerChoices = fc
  .record(
    {
      'Content-Encoding': fc.constantFrom('gzip', 'br', 'deflate', 'identity', 'x-rot13', 'gzip, br'),
      'If-None-Exist': fc.constantFrom(
        'identifier=urn:hostile|1',
        '',
        'Observation?code=x',
        '_count=5',
        'name=a&'.repeat(200),
      ),
      'If-Match': fc.constantFrom('W/"1"', 'W/"0"', '*', 'junk', 'W/"99999999999999999999"'),
      Prefer: fc.constantFrom(
        'return=minimal',
        'return=OperationOutcome',
        'handling=lenient',
        'respond-async',
        'junk=;;',
      ),
      Accept: fc.constantFrom('application/xml', '*/*', 'text/html', 'application/fhir+json;q=0', 'junk'),
      'X-Request-Id': fc.constantFrom('ok-id', 'bad id with spaces', 'x'.repeat(300)),
    },
    { requiredKeys: [] },
  )
  .map((h) => h as Record<string, string>);
const headers = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Record<string, string>>({}) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(headerChoices, fc.nat())
      .map(([h, pick]) => Object.fromEntries(Object.entries(h).filter((_, i, all) => i === pick % all.length))),
  },
  { weight: 1, arbitrary: headerChoices },
);

const CONTENT_TYPES = [
  FHIR_JSON,
  'application/json',
  JSON_PATCH,
  FORM,
  'application/xml',
  'text/plain',
  'application/fhir+json; charset=latin1',
  'multipart/form-data',
];

function withBody(
  kind: string,
  method: HostileSpec['method'],
  path: fc.Arbitrary<string>,
  contentType: string,
  body: fc.Arbitrary<BodySpec>,
): fc.Arbitrary<HostileSpec> {
  return fc
    .tuple(
      path,
      fc.oneof(
        { weight: 12, arbitrary: fc.constant(contentType) },
        { weight: 1, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
      ),
      headers,
      body,
      fc.oneof(
        { weight: 8, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.constantFrom('gzip' as const, 'br' as const, 'deflate' as const) },
      ),
    )
    .map(([p, type, extra, b, encoding]) => {
      // A body really encoded, or (through the headers above) a plain one that says it is.
      const spec: HostileSpec = {
        kind,
        method,
        path: p,
        query: [],
        headers: { ...extra, 'Content-Type': type },
        body: b,
      };
      if (encoding) {
        spec.body = { encoded: encoding, inner: b };
        spec.headers['Content-Encoding'] = encoding;
      }
      return spec;
    });
}

const GIANTS: GiantBody['giant'][] = [
  'given-names',
  'identifiers',
  'long-string',
  'deep-extensions',
  'deep-arrays',
  'many-keys',
  'bundle-entries',
  'copy-doubling',
  'deep-patch-value',
];
const SIZES: Record<GiantBody['giant'], number[]> = {
  'given-names': [10_001, 1_000_000],
  identifiers: [6_000, 30_000],
  'long-string': [1_100_000, 9_000_000],
  'deep-extensions': [40, 200, 2_000],
  'deep-arrays': [65, 10_000, 100_000],
  'many-keys': [10_001, 200_000],
  'bundle-entries': [1_001, 5_000],
  'copy-doubling': [30, 200],
  'deep-patch-value': [65, 10_000],
};
const giant: fc.Arbitrary<GiantBody> = fc
  .constantFrom(...GIANTS)
  .chain((kind) => fc.constantFrom(...SIZES[kind]).map((n) => ({ giant: kind, n })));

/** Where giant bodies go, so each reaches the code it was made for. */
function giantRequest(ids: readonly string[]): fc.Arbitrary<HostileSpec> {
  return giant.map((body): HostileSpec => {
    const patchTarget = `/fhir/Patient/${ids[0]}`;
    switch (body.giant) {
      case 'bundle-entries':
        return {
          kind: `giant:${body.giant}`,
          method: 'POST',
          path: '/fhir',
          query: [],
          headers: { 'Content-Type': FHIR_JSON },
          body,
        };
      case 'copy-doubling':
      case 'deep-patch-value':
        return {
          kind: `giant:${body.giant}`,
          method: 'PATCH',
          path: patchTarget,
          query: [],
          headers: { 'Content-Type': JSON_PATCH },
          body,
        };
      default:
        return {
          kind: `giant:${body.giant}`,
          method: 'POST',
          path: '/fhir/Patient',
          query: [],
          headers: { 'Content-Type': FHIR_JSON },
          body,
        };
    }
  });
}

/** Searches and conditions with too much in them: sent as forms, which no URL length limit stops. */
function giantSearch(): fc.Arbitrary<HostileSpec> {
  return fc
    .constantFrom<[string, string, number]>(
      ['subject:Patient.name', 'x', 3000],
      ['_include', 'Observation:subject', 5000],
      ['name', 'a'.repeat(9 * 1024 * 1024), 1],
      ['code', Array.from({ length: 5000 }, (_, i) => `c${i}`).join(','), 1],
      ['_has:Observation:patient:_has:Observation:patient:_has:Observation:patient:code', 'x', 4],
    )
    .map(([name, value, n]) => ({
      kind: `giant-search:${name.slice(0, 24)}`,
      method: 'POST' as const,
      path: '/fhir/Observation/_search',
      query: [],
      headers: { 'Content-Type': FORM },
      body: { form: Array.from({ length: n }, (): [string, string] => [name, value]) },
    }));
}

function pathOf(ids: readonly string[]): fc.Arbitrary<string> {
  // ids[0] is never a path of its own: no DELETE removes it, so patches and reviews keep a target.
  const id = fc.constantFrom(
    ...ids.slice(1),
    'does-not-exist',
    'bad_id!',
    'x'.repeat(65),
    '%2e%2e',
    'a%2Fb',
    '%E0%A4%A',
  );
  return fc.oneof(
    fc.constantFrom(
      '/fhir',
      '/fhir/metadata',
      '/fhir/Patient',
      '/fhir/Patient/_search',
      '/fhir/Patient/_history',
      '/fhir/_history',
      '/fhir/Observation',
      '/fhir/Pateint',
      '/fhir/metadata/x',
      '/fhir/$validate',
      '/fhir/Patient/$validate',
      '/fhir/Patient/$junk',
      '/fhir/SearchParameter/x/$reindex-status',
      '/healthz/x',
      '/',
    ),
    id.map((i) => `/fhir/Patient/${i}`),
    id.map((i) => `/fhir/Patient/${i}/_history`),
    fc
      .tuple(id, fc.constantFrom('1', '0', '-1', 'x', '99999999999999999999'))
      .map(([i, v]) => `/fhir/Patient/${i}/_history/${v}`),
    id.map((i) => `/fhir/Patient/${i}/$medication-review`),
    id.map((i) => `/fhir/Patient/${i}/$validate`),
    id.map((i) => `/fhir/Patient/${i}/MedicationRequest`),
  );
}

/** Every location in a node: keys of pairs and indexes of arrays, from the root down. */
function locations(
  node: JsonNode,
  at: (string | number)[] = [],
  into: (string | number)[][] = [],
): (string | number)[][] {
  if (node === null || typeof node !== 'object') return into;
  if (Array.isArray(node)) {
    node.forEach((item, i) => {
      into.push([...at, i]);
      locations(item, [...at, i], into);
    });
  } else {
    node.pairs.forEach(([, value], i) => {
      into.push([...at, i]);
      locations(value, [...at, i], into);
    });
  }
  return into;
}

/** A copy of node with the value at a location (pair index or array index) replaced. */
function replaceAt(node: JsonNode, location: (string | number)[], value: JsonNode): JsonNode {
  if (!location.length || node === null || typeof node !== 'object') return value;
  const [head, ...rest] = location as number[];
  if (Array.isArray(node)) return node.map((item, i) => (i === head ? replaceAt(item, rest, value) : item));
  return {
    pairs: node.pairs.map(([k, v], i): [string, JsonNode] => (i === head ? [k, replaceAt(v, rest, value)] : [k, v])),
  };
}

/** A valid input with one value somewhere in it replaced by anything: gets past the gates, then hurts. */
function mutant(base: JsonNode): fc.Arbitrary<JsonNode> {
  const all = locations(base);
  const mutated = fc.tuple(fc.nat(), tree).map(([pick, value]) => replaceAt(base, all[pick % all.length], value));
  // Some go through untouched, so that every endpoint also does its real work under the same load.
  return fc.oneof({ weight: 4, arbitrary: mutated }, { weight: 1, arbitrary: fc.constant(base) });
}

/** Valid inputs of each endpoint, for mutants. */
function validInputs(ids: readonly string[], nonce: number) {
  const patient = obj(
    ['resourceType', 'Patient'],
    ['identifier', [obj(['system', 'urn:hostile'], ['value', `mutant-${nonce}`])]],
    ['name', [obj(['family', 'Mutant'], ['given', ['Ann', 'Lee']])]],
    ['gender', 'female'],
    ['birthDate', '1980-02-03'],
    ['extension', [obj(['url', 'http://example.org/x'], ['valueString', 'x'])]],
  );
  const observation = obj(
    ['resourceType', 'Observation'],
    ['status', 'final'],
    ['code', obj(['coding', [obj(['system', 'http://loinc.org'], ['code', '1234-5'])]])],
    ['subject', obj(['reference', `Patient/${ids[0]}`])],
    ['valueQuantity', obj(['value', 5], ['unit', 'mg'], ['system', 'http://unitsofmeasure.org'], ['code', 'mg'])],
  );
  const jsonPatch: JsonNode = [
    obj(['op', 'test'], ['path', '/gender'], ['value', 'female']),
    obj(['op', 'replace'], ['path', '/gender'], ['value', 'female']),
    obj(['op', 'add'], ['path', '/name/0/given/-'], ['value', 'Mo']),
  ];
  const transaction = obj(
    ['resourceType', 'Bundle'],
    ['type', 'transaction'],
    [
      'entry',
      [
        obj(
          ['fullUrl', 'urn:uuid:00000000-0000-4000-8000-000000000009'],
          ['resource', patient],
          [
            'request',
            obj(['method', 'POST'], ['url', 'Patient'], ['ifNoneExist', `identifier=urn:hostile|mutant-${nonce}`]),
          ],
        ),
        obj(
          [
            'resource',
            replaceAt(observation, [3], obj(['reference', 'urn:uuid:00000000-0000-4000-8000-000000000009'])),
          ],
          ['request', obj(['method', 'POST'], ['url', 'Observation'])],
        ),
        obj(
          ['resource', patient],
          ['request', obj(['method', 'PUT'], ['url', `Patient?identifier=urn:hostile|put-${nonce}`])],
        ),
        obj(
          [
            'resource',
            obj(
              ['resourceType', 'Binary'],
              ['contentType', JSON_PATCH],
              ['data', Buffer.from(renderJson(jsonPatch)).toString('base64')],
            ),
          ],
          ['request', obj(['method', 'PATCH'], ['url', `Patient/${ids[1]}`])],
        ),
        obj(['request', obj(['method', 'GET'], ['url', `Patient?_id=${ids[0]}&_include=Patient:organization`])]),
        obj(['request', obj(['method', 'DELETE'], ['url', 'Observation?code=urn:none|x'])]),
      ],
    ],
  );
  const fhirPath = obj(
    ['resourceType', 'Parameters'],
    [
      'parameter',
      [
        obj(
          ['name', 'operation'],
          [
            'part',
            [
              obj(['name', 'type'], ['valueCode', 'add']),
              obj(['name', 'path'], ['valueString', 'Patient.name[0]']),
              obj(['name', 'name'], ['valueString', 'given']),
              obj(['name', 'value'], ['valueString', 'Ola']),
            ],
          ],
        ),
        obj(
          ['name', 'operation'],
          [
            'part',
            [
              obj(['name', 'type'], ['valueCode', 'replace']),
              obj(['name', 'path'], ['valueString', 'Patient.gender']),
              obj(['name', 'value'], ['valueCode', 'female']),
            ],
          ],
        ),
      ],
    ],
  );
  const review = obj(
    ['resourceType', 'Parameters'],
    [
      'parameter',
      [obj(['name', 'date'], ['valueDate', '2026-06-30']), obj(['name', 'periodStart'], ['valueDate', '2026-01-01'])],
    ],
  );
  const validate = obj(
    ['resourceType', 'Parameters'],
    ['parameter', [obj(['name', 'resource'], ['resource', patient]), obj(['name', 'mode'], ['valueCode', 'create'])]],
  );
  return { patient, observation, jsonPatch, transaction, fhirPath, review, validate };
}

/**
 * A hostile request against a server holding the resources `ids` (Patients): a mix of every family,
 * giants rarely (they are the slow ones), the rest small.
 */
export function hostileRequest(ids: readonly string[]): fc.Arbitrary<HostileSpec> {
  const anyPath = pathOf(ids);
  const instance = fc.constantFrom(...ids).map((i) => `/fhir/Patient/${i}`);
  const json = (arb: fc.Arbitrary<JsonNode>) => arb.map((node): BodySpec => ({ json: node }));
  const search = fc
    .tuple(
      fc.constantFrom('GET' as const, 'HEAD' as const, 'POST' as const),
      fc.constantFrom(
        '/fhir/Patient',
        '/fhir/Observation',
        '/fhir',
        `/fhir/Patient/${ids[0]}/Observation`,
        '/fhir/Patient/_history',
        '/fhir/_history',
      ),
      fc.array(searchPair, { maxLength: 8 }),
      headers,
    )
    .map(([method, path, query, extra]): HostileSpec => {
      if (method !== 'POST') return { kind: 'search', method, path, query, headers: extra };
      return {
        kind: 'search-post',
        method,
        path: `${path}/_search`,
        query: [],
        headers: { ...extra, 'Content-Type': FORM },
        body: { form: query },
      };
    });
  const raw = fc
    .constantFrom(
      '{',
      '{"resourceType":',
      '[1,2',
      '{"a":1}}',
      '\u00ff\u00fe',
      'null',
      '"text"',
      '1e999',
      '{"resourceType":"Patient","gender":"male",}',
      '\uFEFF{"resourceType":"Patient"}',
    )
    .map((text): BodySpec => ({ raw: text }));
  /** A mutant of one of the valid inputs, whose identifiers are its own (conditions match nothing stored). */
  const mutantOf = (pick: (inputs: ReturnType<typeof validInputs>) => JsonNode) =>
    json(fc.nat().chain((nonce) => mutant(pick(validInputs(ids, nonce)))));
  const mutants = fc.oneof(
    withBody(
      'mutant:create',
      'POST',
      fc.constant('/fhir/Patient'),
      FHIR_JSON,
      mutantOf((v) => v.patient),
    ),
    withBody(
      'mutant:create',
      'POST',
      fc.constant('/fhir/Observation'),
      FHIR_JSON,
      mutantOf((v) => v.observation),
    ),
    withBody(
      'mutant:update',
      'PUT',
      fc.nat().map((n) => `/fhir/Patient?identifier=urn:hostile|update-${n}`),
      FHIR_JSON,
      mutantOf((v) => v.patient),
    ),
    withBody(
      'mutant:transaction',
      'POST',
      fc.constant('/fhir'),
      FHIR_JSON,
      mutantOf((v) => v.transaction),
    ),
    withBody(
      'mutant:batch',
      'POST',
      fc.constant('/fhir'),
      FHIR_JSON,
      mutantOf((v) => replaceAt(v.transaction, [1], 'batch')),
    ),
    withBody(
      'mutant:json-patch',
      'PATCH',
      instance,
      JSON_PATCH,
      mutantOf((v) => v.jsonPatch),
    ),
    withBody(
      'mutant:fhirpath-patch',
      'PATCH',
      instance,
      FHIR_JSON,
      mutantOf((v) => v.fhirPath),
    ),
    withBody(
      'mutant:review',
      'POST',
      instance.map((p) => `${p}/$medication-review`),
      FHIR_JSON,
      mutantOf((v) => v.review),
    ),
    withBody(
      'mutant:validate',
      'POST',
      fc.constant('/fhir/Patient/$validate'),
      FHIR_JSON,
      mutantOf((v) => v.validate),
    ),
  );
  return fc.oneof(
    { weight: 10, arbitrary: mutants },
    ...['Patient', 'Observation', 'MedicationRequest'].map((type) => ({
      weight: 2,
      arbitrary: withBody('create', 'POST', fc.constant(`/fhir/${type}`), FHIR_JSON, json(resourceOf(type, ids))),
    })),
    {
      weight: 3,
      arbitrary: withBody(
        'update',
        'PUT',
        fc.oneof(instance, fc.constant('/fhir/Patient?identifier=urn:hostile|1'), anyPath),
        FHIR_JSON,
        json(resourceOf('Patient', ids)),
      ),
    },
    { weight: 5, arbitrary: withBody('bundle', 'POST', fc.constant('/fhir'), FHIR_JSON, json(bundleOf(ids))) },
    {
      weight: 3,
      arbitrary: withBody(
        'json-patch',
        'PATCH',
        fc.oneof(instance, fc.constant('/fhir/Patient?identifier=urn:hostile|1')),
        JSON_PATCH,
        json(jsonPatchOps),
      ),
    },
    { weight: 3, arbitrary: withBody('fhirpath-patch', 'PATCH', instance, FHIR_JSON, json(fhirPathPatch)) },
    {
      weight: 2,
      arbitrary: withBody(
        'review',
        'POST',
        instance.map((p) => `${p}/$medication-review`),
        FHIR_JSON,
        json(reviewParameters),
      ),
    },
    {
      weight: 2,
      arbitrary: withBody(
        'validate',
        'POST',
        fc.constantFrom('/fhir/Patient/$validate', `/fhir/Patient/${ids[0]}/$validate`),
        FHIR_JSON,
        json(fc.oneof(resourceOf('Patient', ids), reviewParameters, tree)),
      ),
    },
    { weight: 2, arbitrary: withBody('raw', 'POST', anyPath, FHIR_JSON, raw) },
    { weight: 6, arbitrary: search },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          fc.constantFrom('GET' as const, 'DELETE' as const, 'OPTIONS' as const, 'HEAD' as const, 'PATCH' as const),
          anyPath,
          fc.array(searchPair, { maxLength: 3 }),
          headers,
        )
        .map(([method, path, query, extra]): HostileSpec => ({ kind: 'path', method, path, query, headers: extra })),
    },
    { weight: 1, arbitrary: giantRequest(ids) },
    { weight: 1, arbitrary: giantSearch() },
  );
}

/** JSON text of a node; hostile keys are written as they are (JSON.stringify of an object could not). */
export function renderJson(node: JsonNode): string {
  if (node === null || typeof node !== 'object') return JSON.stringify(node) ?? 'null';
  if (Array.isArray(node)) return `[${node.map(renderJson).join(',')}]`;
  return `{${node.pairs.map(([k, v]) => `${JSON.stringify(k)}:${renderJson(v)}`).join(',')}}`;
}

function renderGiant({ giant: kind, n }: GiantBody): string {
  switch (kind) {
    case 'given-names':
      return `{"resourceType":"Patient","name":[{"given":[${Array(n).fill('"g"').join(',')}]}]}`;
    case 'identifiers':
      return `{"resourceType":"Patient","identifier":[${Array.from({ length: n }, (_, i) => `{"system":"urn:giant","value":"v${i}"}`).join(',')}]}`;
    case 'long-string':
      return `{"resourceType":"Patient","name":[{"text":"${'x'.repeat(n)}"}]}`;
    case 'deep-extensions':
      return `{"resourceType":"Patient","extension":[${'{"url":"http://x","extension":['.repeat(n - 1)}{"url":"http://x","valueString":"x"}${']}'.repeat(n - 1)}]}`;
    case 'deep-arrays':
      return `{"resourceType":"Patient","extension":${'['.repeat(n)}${']'.repeat(n)}}`;
    case 'many-keys':
      return `{"resourceType":"Patient",${Array.from({ length: n }, (_, i) => `"k${i}":1`).join(',')}}`;
    case 'bundle-entries':
      return `{"resourceType":"Bundle","type":"batch","entry":[${Array(n).fill('{"request":{"method":"GET","url":"metadata"}}').join(',')}]}`;
    case 'copy-doubling':
      // Each copy puts the whole list into its first element: the resource doubles with every operation.
      return `[{"op":"add","path":"/extension","value":[{"url":"http://x","valueString":"x"}]},${Array(n).fill('{"op":"copy","from":"/extension","path":"/extension/0/extension"}').join(',')}]`;
    case 'deep-patch-value':
      return `[{"op":"add","path":"/extension","value":${'['.repeat(n)}${']'.repeat(n)}}]`;
  }
}

function renderBody(body: BodySpec): Buffer {
  if ('json' in body) return Buffer.from(renderJson(body.json));
  if ('raw' in body) return Buffer.from(body.raw, 'latin1');
  if ('form' in body) return Buffer.from(new URLSearchParams(body.form).toString());
  if ('encoded' in body) {
    const inner = renderBody(body.inner);
    if (body.encoded === 'gzip') return gzipSync(inner);
    if (body.encoded === 'br') return brotliCompressSync(inner);
    return deflateSync(inner);
  }
  return Buffer.from(renderGiant(body));
}

/** Percent-encoding of the UTF-8 bytes (encodeURIComponent throws on a lone surrogate; a client may send one). */
function percentEncode(text: string): string {
  let encoded = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    encoded += /[A-Za-z0-9\-._~:]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

/** The bytes of a spec: method, URL (query percent-encoded), headers and body. */
export function render(spec: HostileSpec): RenderedRequest {
  const query = spec.query.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`).join('&');
  const rendered: RenderedRequest = {
    method: spec.method,
    url: query ? `${spec.path}?${query}` : spec.path,
    headers: { ...spec.headers },
  };
  if (spec.body !== undefined) rendered.body = renderBody(spec.body);
  return rendered;
}
