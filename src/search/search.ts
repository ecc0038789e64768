import type { Bundle, BundleEntry, BundleLink, OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { Db } from 'mongodb';
import { createHash } from 'node:crypto';
import { bundleConfidentiality } from '../auth/labels';
import { isResourceType } from '../fhir/definitions';
import { badRequest, issue, outcome } from '../fhir/outcome';
import { PageTokens } from '../fhir/page-token';
import { SERVED_FIELDS, type CurrentDocument } from '../store/documents';
import { directReader, type Reader } from '../store/read-view';
import { allOf, asFilter, NOTHING, type MongoFilter } from './compile/element';
import { compileFilter, LIVE, type CompileContext } from './compile/query';
import { loadIncludes, type Included } from './includes';
import {
  compareDocuments,
  compileSort,
  decodeCursor,
  encodeCursor,
  keysetFilter,
  mongoSort,
  sortValueOf,
  type Cursor,
  type SortField,
  type SortSpec,
} from './paging';
import { CURSOR_PARAM, parseSearch, type IncludeSpec, type ParsedSearch } from './parse';
import type { SearchParameterRegistry } from './registry';
import { dateSpansMarked } from './date-spans';
import { engineFeatures } from './engine';
import { SORT_KEY } from './keys';
import { subset } from './summary';

export interface SearchRequest {
  /** Undefined for a system-level search (`GET [base]?_type=...`). */
  resourceType?: string;
  /** The query in order, a repeated name once per occurrence (URLSearchParams or FhirRequest.query). */
  params: Iterable<[string, string]>;
  /** Absolute FHIR base without trailing slash. */
  baseUrl: string;
  /** `Prefer: handling=lenient`: unknown parameters are ignored and reported instead of a 400. */
  lenient?: boolean;
  /** Compartment search (`GET Patient/123/MedicationRequest`): only members of this compartment. */
  compartment?: { type: string; id: string };
  /** Who searches (requesterHash): page tokens are bound to it, so one requester's cursor fails for another. */
  requester?: string;
}

export interface SearchOptions {
  maxCount: number;
  defaultCount: number;
  /** Secret of the page tokens (PAGE_TOKEN_SECRET), or a PageTokens shared by the server. */
  pageSecret: string | PageTokens;
  /** For tests: the "now" of `ap` date searches. */
  now?: Date;
  /** The request's reads (a ReadView), so a page, its total and its includes agree on whole commits. */
  reader?: Reader;
}

interface Match {
  type: string;
  doc: CurrentDocument;
}

const tokenCache = new Map<string, PageTokens>();

function pageTokens(secret: string | PageTokens): PageTokens {
  if (secret instanceof PageTokens) return secret;
  let tokens = tokenCache.get(secret);
  if (!tokens) tokenCache.set(secret, (tokens = new PageTokens(secret)));
  return tokens;
}

async function searchedTypes(db: Db, request: SearchRequest, parsed: ParsedSearch): Promise<string[]> {
  if (request.resourceType) return [request.resourceType];
  const types = parsed.types ?? [];
  for (const type of types)
    if (!isResourceType(type)) throw badRequest(`Unknown resource type ${type} in _type`, '_type');
  if (types.length) return [...new Set(types)].sort();
  // System-level search without _type: every type that has a collection.
  const collections = await db.listCollections({}, { nameOnly: true }).toArray();
  return collections
    .map((c) => c.name)
    .filter(isResourceType)
    .sort();
}

function validateIncludes(
  registry: SearchParameterRegistry,
  specs: IncludeSpec[],
  lenient: boolean,
  ignored: { name: string; reason: string }[],
): IncludeSpec[] {
  return specs.filter((spec) => {
    const name = `_${spec.kind}`;
    let problem: string | undefined;
    if (spec.sourceType !== '*' && !isResourceType(spec.sourceType))
      problem = `Unknown resource type ${spec.sourceType}`;
    else if (
      spec.param !== '*' &&
      spec.sourceType !== '*' &&
      registry.get(spec.sourceType, spec.param)?.type !== 'reference'
    ) {
      problem = `${spec.sourceType} has no reference parameter ${spec.param}`;
    } else if (spec.targetType && !isResourceType(spec.targetType))
      problem = `Unknown resource type ${spec.targetType}`;
    if (!problem) return true;
    if (!lenient) throw badRequest(`${name}=${spec.raw}: ${problem}`, name);
    ignored.push({ name, reason: problem });
    return false;
  });
}

/**
 * The filter and sort of one collection's page: the search's filter, after the cursor when paging.
 * explain.ts reports exactly these, so what is explained is what is run.
 */
export function pageQuery(
  filter: MongoFilter,
  fields: SortField[],
  cursor: Cursor | undefined,
  type: string,
): { filter: MongoFilter; sort: SortSpec } {
  const reverse = cursor?.direction === 'previous';
  return {
    filter: cursor ? allOf([filter, keysetFilter(fields, cursor, type, reverse)]) : filter,
    sort: mongoSort(fields, reverse),
  };
}

/** A page's documents without their search index, but for its sort keys (the page's links). */
const PAGE_FIELDS = { ...SERVED_FIELDS, [`sp.${SORT_KEY}`]: 1 } as const;

/** Fetches one page in sort order across the searched collections (one for type-level searches). */
async function fetchPage(
  reader: Reader,
  filters: Map<string, MongoFilter>,
  fields: SortField[],
  cursor: Cursor | undefined,
  limit: number,
  withIndex: boolean,
): Promise<Match[]> {
  const reverse = cursor?.direction === 'previous';
  const pages = await Promise.all(
    [...filters].map(async ([type, filter]) => {
      const query = pageQuery(filter, fields, cursor, type);
      const docs = await reader.find<CurrentDocument>(type, asFilter(query.filter), {
        sort: query.sort,
        limit,
        ...(withIndex ? {} : { projection: PAGE_FIELDS }),
      });
      return docs.map((doc) => ({ type, doc }));
    }),
  );
  const merged = pages.length === 1 ? pages[0] : pages.flat().sort((a, b) => compareDocuments(fields, a, b, reverse));
  return merged.slice(0, limit);
}

async function countMatches(
  reader: Reader,
  filters: Map<string, MongoFilter>,
  mode: 'estimate' | 'accurate',
): Promise<number> {
  // One count per collection, all at once: a system-level search counts every type's collection.
  const counts = await Promise.all(
    [...filters].map(([type, filter]) =>
      // An estimate is the collection size when nothing but liveness is filtered (deleted ones included).
      mode === 'estimate' && filter === LIVE ? reader.estimatedCount(type) : reader.count(type, asFilter(filter)),
    ),
  );
  return counts.reduce((sum, n) => sum + n, 0);
}

function encodeQuery(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${encodeURIComponent(k).replace(/%3A/g, ':')}=${encodeURIComponent(v)}`).join('&');
}

function cursorAt(
  match: Match,
  fields: SortField[],
  query: string,
  direction: Cursor['direction'],
  total?: number,
): Cursor {
  const cursor: Cursor = {
    query,
    values: fields.map((f) => sortValueOf(match.doc, f)),
    type: match.type,
    id: match.doc._id,
    direction,
  };
  if (total !== undefined) cursor.total = total;
  return cursor;
}

function ignoredOutcome(ignored: { name: string; reason: string }[]): OperationOutcome {
  return outcome(
    ignored.map((i) => issue('warning', 'not-supported', `Parameter ${i.name} ignored: ${i.reason}`, i.name)),
  );
}

/** A search compiled and bound to its page: everything but the reads. */
export interface CompiledSearch {
  parsed: ParsedSearch;
  types: string[];
  /** One MongoDB filter per searched type (compartment membership included). */
  filters: Map<string, MongoFilter>;
  fields: SortField[];
  includes: IncludeSpec[];
  count: number;
  /** The parameters that were applied, for the self link and the query hash. */
  applied: [string, string][];
  ignored: { name: string; reason: string }[];
  queryHash: string;
  tokens: PageTokens;
  cursor?: Cursor;
}

/** Parses and compiles a search as search() runs it; shared with explain.ts. */
export async function compileSearch(
  db: Db,
  request: SearchRequest,
  registry: SearchParameterRegistry,
  options: SearchOptions,
): Promise<CompiledSearch> {
  const parsed = parseSearch(request.params);
  const lenient = request.lenient === true;
  const ignored = [...parsed.ignored];
  if (ignored.length && !lenient) throw badRequest(ignored[0].reason, ignored[0].name);
  const types = await searchedTypes(db, request, parsed);
  if (request.resourceType && !isResourceType(request.resourceType)) {
    throw badRequest(`Unknown resource type ${request.resourceType}`);
  }
  const ctx: CompileContext = {
    db,
    reader: options.reader ?? directReader(db),
    registry,
    baseUrl: request.baseUrl,
    now: options.now ?? new Date(),
    lenient,
    ignored,
    elemMatch: (await engineFeatures(db)).elemMatch,
    dateSpans: await dateSpansMarked(db),
  };
  const filters = new Map<string, MongoFilter>();
  // Compartment membership is computed at write time (src/fhir/compartments.ts) and indexed.
  const membership: MongoFilter | undefined = request.compartment
    ? { compartments: `${request.compartment.type}/${request.compartment.id}` }
    : undefined;
  for (const type of types) {
    const filter = await compileFilter(ctx, type, parsed.params);
    // A type no resource of which can match is not asked at all: the engine scans every document of
    // a collection for an `_id` `$in` of no values (4 s for 7,000 AuditEvents).
    if (filter !== NOTHING) filters.set(type, membership ? allOf([membership, filter]) : filter);
  }
  const fields = compileSort(registry, types, parsed.sort);
  const includes = validateIncludes(registry, parsed.includes, lenient, ignored);
  const count = Math.min(parsed.count ?? options.defaultCount, options.maxCount);

  // Only what was applied goes into the self link and the query hash that binds page tokens.
  const ignoredNames = new Set(ignored.map((i) => i.name));
  const applied = parsed.applied.filter(([name]) => !ignoredNames.has(name) && !ignoredNames.has(name.split(':')[0]));
  if (parsed.count !== undefined && parsed.count > options.maxCount) {
    const at = applied.findIndex(([name]) => name === '_count');
    if (at >= 0) applied[at] = ['_count', String(count)];
  }
  const queryHash = createHash('sha256')
    .update(
      JSON.stringify([
        request.resourceType ?? '',
        request.compartment ?? null,
        types,
        applied,
        request.requester ?? '',
      ]),
    )
    .digest('base64url')
    .slice(0, 16);
  const tokens = pageTokens(options.pageSecret);
  const compiled: CompiledSearch = {
    parsed,
    types,
    filters,
    fields,
    includes,
    count,
    applied,
    ignored,
    queryHash,
    tokens,
  };
  if (parsed.cursor) compiled.cursor = decodeCursor(tokens, parsed.cursor, queryHash, CURSOR_PARAM);
  return compiled;
}

/**
 * A FHIR search (R4 search page): parse, compile one MongoDB filter per searched type, read one page
 * by keyset, add includes, and build the searchset Bundle with self/next/previous links.
 */
export async function search(
  db: Db,
  request: SearchRequest,
  registry: SearchParameterRegistry,
  options: SearchOptions,
): Promise<Bundle> {
  const { parsed, filters, fields, includes, count, applied, ignored, queryHash, tokens, cursor } = await compileSearch(
    db,
    request,
    registry,
    options,
  );

  const reader = options.reader ?? directReader(db);
  const wantEntries = parsed.summary !== 'count' && count > 0;
  const fetched = wantEntries ? await fetchPage(reader, filters, fields, cursor, count + 1, includes.length > 0) : [];
  const more = fetched.length > count;

  let total = cursor?.total;
  // A count reads every match again, which can cost more than the page itself: as in HAPI, it is made
  // only when asked for (`_total`, `_summary=count`, `_count=0`). A first page that holds every match
  // is its own total, and that one is always given unless `_total=none`.
  const totalMode = parsed.summary === 'count' || !wantEntries ? 'accurate' : parsed.total;
  if (total === undefined && totalMode !== 'none') {
    if (wantEntries && !cursor && !more) total = fetched.length;
    else if (totalMode) total = await countMatches(reader, filters, totalMode);
  }
  const page = fetched.slice(0, count);
  const backwards = cursor?.direction === 'previous';
  if (backwards) page.reverse();

  const compartmentBase = request.compartment
    ? `${request.baseUrl}/${request.compartment.type}/${request.compartment.id}`
    : request.baseUrl;
  const base = request.resourceType ? `${compartmentBase}/${request.resourceType}` : compartmentBase;
  const link = (relation: string, extra?: [string, string]): BundleLink => {
    const pairs = extra ? [...applied, extra] : applied;
    return { relation, url: pairs.length ? `${base}?${encodeQuery(pairs)}` : base };
  };
  const links: BundleLink[] = [link('self', parsed.cursor ? [CURSOR_PARAM, parsed.cursor] : undefined)];
  if (page.length && (backwards || more)) {
    const next = encodeCursor(tokens, cursorAt(page[page.length - 1], fields, queryHash, 'next', total));
    links.push(link('next', [CURSOR_PARAM, next]));
  }
  if (page.length && (backwards ? more : cursor !== undefined)) {
    const previous = encodeCursor(tokens, cursorAt(page[0], fields, queryHash, 'previous', total));
    links.push(link('previous', [CURSOR_PARAM, previous]));
  }

  const included: Included[] =
    page.length && includes.length ? await loadIncludes(reader, registry, page, includes) : [];
  const entry = (item: Match, mode: 'match' | 'include'): BundleEntry => ({
    fullUrl: `${request.baseUrl}/${item.type}/${item.doc._id}`,
    resource: subset(item.doc.resource, parsed.summary, parsed.elements),
    search: { mode },
  });
  const entries: BundleEntry[] = [...page.map((m) => entry(m, 'match')), ...included.map((m) => entry(m, 'include'))];
  if (ignored.length) entries.push({ resource: ignoredOutcome(ignored) as Resource, search: { mode: 'outcome' } });

  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset' };
  // SECURITY.md: a Bundle that holds a sensitive resource carries the highest confidentiality of its entries.
  const confidentiality = bundleConfidentiality(entries.map((e) => e.resource));
  if (confidentiality) bundle.meta = { security: [confidentiality] };
  if (total !== undefined) bundle.total = total;
  bundle.link = links;
  if (entries.length) bundle.entry = entries;
  return bundle;
}

/**
 * The live resources of `type` that a conditional interaction's query matches (If-None-Exist,
 * `PUT/DELETE [type]?query`, conditional references), at most `limit` of them. Strict: a parameter
 * the server does not know is a 400, since ignoring it would match more than the client meant.
 */
export async function matchDocuments(
  db: Db,
  registry: SearchParameterRegistry,
  type: string,
  params: Iterable<[string, string]>,
  limit: number,
  baseUrl: string,
  reader: Reader = directReader(db),
): Promise<CurrentDocument[]> {
  const parsed = parseSearch(params);
  if (parsed.ignored.length) throw badRequest(parsed.ignored[0].reason, parsed.ignored[0].name);
  if (!parsed.params.length) throw badRequest(`A conditional ${type} query needs at least one search parameter`);
  const ctx: CompileContext = {
    db,
    reader,
    registry,
    baseUrl,
    now: new Date(),
    lenient: false,
    ignored: [],
    elemMatch: (await engineFeatures(db)).elemMatch,
    dateSpans: await dateSpansMarked(db),
  };
  const filter = await compileFilter(ctx, type, parsed.params);
  if (filter === NOTHING) return [];
  return reader.find<CurrentDocument>(type, asFilter(filter), { limit, sort: { _id: 1 } });
}

/**
 * A search query compiled to the filter a search of `type` would run (strict, as conditional
 * matches are): what a query-restricted SMART scope (`patient/Observation.rs?category=laboratory`)
 * adds to every read of the type.
 */
export async function compileQuery(
  db: Db,
  registry: SearchParameterRegistry,
  type: string,
  params: Iterable<[string, string]>,
  baseUrl: string,
): Promise<MongoFilter> {
  const parsed = parseSearch(params);
  if (parsed.ignored.length) throw badRequest(parsed.ignored[0].reason, parsed.ignored[0].name);
  const ctx: CompileContext = {
    db,
    reader: directReader(db),
    registry,
    baseUrl,
    now: new Date(),
    lenient: false,
    ignored: [],
    elemMatch: (await engineFeatures(db)).elemMatch,
    dateSpans: await dateSpansMarked(db),
  };
  return compileFilter(ctx, type, parsed.params);
}
