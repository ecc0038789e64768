import type { Bundle, BundleEntry, BundleLink } from '@medplum/fhirtypes';
import { parseDateRange } from '../../fhir/dates';
import { badRequest, notFound } from '../../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../../fhir/request';
import { queryValue } from '../../fhir/request';
import type { HistoryDocument } from '../../store/documents';
import type { HistoryQuery } from '../../store/resource-store';
import type { ServerContext } from '../context';
import { etag, httpDate } from '../headers';
import { requireValidId } from '../resource-body';
import { resourceTypes } from '../../fhir/definitions';
import { NOTHING } from '../../search/compile/element';
import { bundleConfidentiality } from '../../auth/labels';
import { requesterHash } from '../../auth/requester';

const HISTORY_PARAMETERS = new Set(['_count', '_since', '_at', '_page', '_format', '_pretty']);

interface HistoryPosition {
  t: number;
  k: string;
  /** Whom the token was issued to (requesterHash). */
  r?: string;
}

function parseCount(request: FhirRequest, context: ServerContext): number {
  const raw = queryValue(request, '_count');
  if (raw === undefined) return context.config.defaultPageSize;
  if (!/^\d+$/.test(raw)) throw badRequest(`_count must be a non-negative integer, got "${raw}"`, '_count');
  return Math.min(Number(raw), context.config.maxPageSize);
}

function parseInstant(request: FhirRequest, name: '_since' | '_at') {
  const raw = queryValue(request, name);
  if (raw === undefined) return undefined;
  const range = parseDateRange(raw);
  if (!range) throw badRequest(`${name} must be a FHIR date, dateTime or instant, got "${raw}"`, name);
  return range;
}

function entryFor(request: FhirRequest, doc: HistoryDocument): BundleEntry {
  const url = `${doc.type}/${doc.id}`;
  const response = { etag: etag(doc.v), lastModified: doc.ts.toISOString() };
  if (doc.deleted) {
    return {
      fullUrl: `${request.baseUrl}/${url}`,
      request: { method: 'DELETE', url },
      response: { status: '204 No Content', ...response },
    };
  }
  const created = doc.method === 'POST' || doc.v === 1;
  return {
    fullUrl: `${request.baseUrl}/${url}`,
    resource: doc.resource,
    request: doc.method === 'POST' ? { method: 'POST', url: doc.type } : { method: 'PUT', url },
    response: { status: created ? '201 Created' : '200 OK', ...response },
  };
}

/** History at instance, type or system level (RESTful API, "history"), newest first, paged by cursor. */
export async function history(
  request: FhirRequest,
  context: ServerContext,
  target: { type?: string; id?: string },
): Promise<FhirResponse> {
  if (target.type && target.id) requireValidId(target.id, target.type);
  for (const [name] of request.query) {
    if (!HISTORY_PARAMETERS.has(name)) throw badRequest(`Unknown history parameter "${name}"`, name);
  }
  const count = parseCount(request, context);
  const since = parseInstant(request, '_since');
  const at = parseInstant(request, '_at');
  const pageToken = queryValue(request, '_page');
  const position = pageToken ? context.pageTokens.decode<HistoryPosition>(pageToken, '_page') : undefined;
  // A page token is honoured only for the requester it was made for (the same scopes and identity).
  const owner = request.requester ? requesterHash(request.requester) : '';
  if (position && (position.r ?? '') !== owner) {
    throw badRequest('This _page token was issued to another requester', '_page');
  }
  const query: HistoryQuery = {
    ...target,
    since: since?.start,
    at,
    // One extra row tells whether there is a next page without counting the collection.
    count: count + 1,
    after: position ? { ts: new Date(position.t), key: position.k } : undefined,
  };
  const restriction = request.access?.historyFilter(target.type, resourceTypes());
  if (restriction !== undefined) query.restriction = restriction;
  if (target.type && target.id && !(await context.store.read(target.type, target.id, request.reads))) {
    throw notFound(`${target.type}/${target.id} is not known`);
  }
  const docs = count === 0 || restriction === NOTHING ? [] : await context.store.history(query);
  const page = docs.slice(0, count);
  const path = [target.type, target.id, '_history'].filter(Boolean).join('/');
  const applied = request.query.filter(([name]) => name !== '_page' && name !== '_format' && name !== '_pretty');
  const link = (extra: [string, string][]): string => {
    const params = new URLSearchParams([...applied, ...extra]).toString();
    return `${request.baseUrl}/${path}${params ? `?${params}` : ''}`;
  };
  const links: BundleLink[] = [{ relation: 'self', url: link(pageToken ? [['_page', pageToken]] : []) }];
  if (docs.length > count && page.length > 0) {
    const last = page[page.length - 1];
    links.push({
      relation: 'next',
      url: link([['_page', context.pageTokens.encode({ t: last.ts.getTime(), k: last._id, r: owner })]]),
    });
  }
  const confidentiality = bundleConfidentiality(page.map((doc) => doc.resource));
  const bundle: Bundle = {
    resourceType: 'Bundle',
    ...(confidentiality ? { meta: { security: [confidentiality] } } : {}),
    type: 'history',
    link: links,
    entry: page.map((doc) => entryFor(request, doc)),
  };
  return { status: 200, headers: { lastModified: page[0] ? httpDate(page[0].ts) : undefined }, body: bundle };
}
