import type { BundleEntry, Resource } from '@medplum/fhirtypes';
import { copyNumberText } from '../../fhir/number-text';
import { allOk, badRequest, FhirError, preconditionFailed } from '../../fhir/outcome';
import type { FhirRequest } from '../../fhir/request';
import type { CurrentDocument } from '../../store/documents';
import { newId } from '../../store/resource-store';
import { claimKey, findConditional, parseConditionalQuery, requireUnusedId } from '../conditional';
import { requireBodyId } from '../resource-body';
import { TimeSlice } from '../time-slice';
import type { ServerContext } from '../context';
import { etag, httpDate } from '../headers';
import { versionUrl } from '../respond';
import { entryError } from './entry-error';

/** What a transaction knows before its first entry runs. */
export interface PreparedTransaction {
  /** The entries with every placeholder and conditional reference rewritten to the id it stands for. */
  entries: BundleEntry[];
  /** The id each creating entry (POST, or a conditional PUT that matched nothing) will write. */
  assignedIds: (string | undefined)[];
  /** The conditional-create claim each creating conditional entry takes (see conditional.ts). */
  claims: (string | undefined)[];
  /** Entries already answered during preparation (a conditional create that matched). */
  results: (BundleEntry | undefined)[];
  /**
   * "Type/id" of each stored resource an ifNoneExist or a conditional reference resolved to, with the
   * entry that resolved it: conditions are resolved before the DELETE entries run, so a transaction
   * that also deletes one of these would answer with, or point to, a resource it removes.
   */
  resolvedByCondition: Map<string, number>;
}

const CONDITIONAL_REFERENCE = /^([A-Z][A-Za-z]+)\?(.+)$/;

/** An entry's condition: If-None-Exist of a POST, or the query of a conditional PUT. */
function conditionOf(entry: BundleEntry): string | undefined {
  const method = entry.request?.method;
  if (method === 'POST') return entry.request?.ifNoneExist;
  if (method === 'PUT' && entry.request?.url.includes('?')) return entry.request.url;
  return undefined;
}

/** "system|value" when a condition is exactly one identifier token (the usual EHR sync condition). */
function identifierCondition(pairs: [string, string][]): string | undefined {
  if (pairs.length !== 1 || pairs[0][0] !== 'identifier') return undefined;
  const value = pairs[0][1];
  return /^[^,|\\]+\|[^,|\\]+$/.test(value) ? value : undefined;
}

function identifiersOf(doc: CurrentDocument): string[] {
  const stored = doc.sp?.identifier;
  const elements = Array.isArray(stored) ? stored : stored ? [stored] : [];
  return elements.map((e) => (e as { sc?: string }).sc).filter((sc): sc is string => typeof sc === 'string');
}

/**
 * The matches of every identifier condition of the transaction, one search per type (values ORed)
 * instead of one per entry: an EHR's Bundle has dozens of such entries, and each search may scan.
 * Conditions of other shapes are searched one by one later.
 */
async function prefetchIdentifierMatches(
  request: FhirRequest,
  context: ServerContext,
  entries: BundleEntry[],
): Promise<Map<string, CurrentDocument[]>> {
  const byType = new Map<string, Set<string>>();
  for (const entry of entries) {
    const condition = conditionOf(entry);
    const type = entry.resource?.resourceType;
    if (condition === undefined || !type) continue;
    let pairs: [string, string][];
    try {
      pairs = parseConditionalQuery(context, condition, type, 'condition');
    } catch {
      continue; // reported with the entry's index by the entry loop
    }
    const identifier = identifierCondition(pairs);
    if (!identifier) continue;
    if (!byType.has(type)) byType.set(type, new Set());
    byType.get(type)?.add(identifier);
  }
  const matches = new Map<string, CurrentDocument[]>();
  for (const [type, identifiers] of byType) {
    const values = [...identifiers];
    const limit = values.length * 2 + 1;
    let found: CurrentDocument[];
    try {
      found = await findConditional(context, request, type, [['identifier', values.join(',')]], limit);
    } catch (error) {
      if (error instanceof FhirError) continue; // reported with the entry's index by the entry loop
      throw error;
    }
    // At the limit some value's matches may be cut off: those conditions are searched one by one.
    if (found.length >= limit) continue;
    for (const value of values) {
      matches.set(
        claimKey(type, [['identifier', value]]),
        found.filter((doc) => identifiersOf(doc).includes(value)),
      );
    }
  }
  return matches;
}

/**
 * Replaces every Reference.reference the map knows, anywhere in the resource (contained, extensions).
 * The copy is built with fromEntries, which defines properties: assigning a key such as __proto__
 * would change the copy's prototype instead (the parser refuses such keys; this does not rely on it).
 */
function rewrite(value: unknown, idMap: Map<string, string>): unknown {
  if (Array.isArray(value)) {
    const list = value.map((v) => rewrite(v, idMap));
    copyNumberText(value, list);
    return list;
  }
  if (value && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      result[key] = key === 'reference' && typeof v === 'string' && idMap.has(v) ? idMap.get(v) : rewrite(v, idMap);
    }
    copyNumberText(value, result); // the decimals' written precision (src/fhir/number-text.ts)
    return result;
  }
  return value;
}

/** Every conditional reference ("Patient?identifier=a|b") in a resource. */
function conditionalReferences(value: unknown, into: Set<string>): void {
  if (Array.isArray(value)) value.forEach((v) => conditionalReferences(v, into));
  else if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (key === 'reference' && typeof v === 'string' && CONDITIONAL_REFERENCE.test(v)) into.add(v);
      else conditionalReferences(v, into);
    }
  }
}

/**
 * Resolves what a transaction's entries refer to before any entry runs (RESTful API, "Transaction
 * Processing Rules"): ids for created resources, If-None-Exist and conditional PUT matches, and
 * conditional references; then rewrites every reference to a fullUrl or condition to "Type/id".
 */
export async function prepareTransaction(
  request: FhirRequest,
  context: ServerContext,
  entries: BundleEntry[],
): Promise<PreparedTransaction> {
  const idMap = new Map<string, string>();
  /** Condition (claim key) → "Type/id": a conditional reference to an entry's condition resolves to it. */
  const byCondition = new Map<string, string>();
  const assignedIds: (string | undefined)[] = new Array(entries.length);
  const claims: (string | undefined)[] = new Array(entries.length);
  const results: (BundleEntry | undefined)[] = new Array(entries.length);
  const resolvedByCondition = new Map<string, number>();
  const prepared = entries.map((entry) => ({ ...entry }));
  const prefetched = await prefetchIdentifierMatches(request, context, entries);
  const slice = new TimeSlice();

  for (const [index, entry] of prepared.entries()) {
    const method = entry.request?.method;
    const resource = entry.resource;
    if (!resource || (method !== 'POST' && method !== 'PUT')) continue;
    const type = resource.resourceType;
    await slice.pause();
    try {
      // A PUT's id is looked up below, before the entry is validated: it must be an id, not a query.
      if (method === 'PUT') requireBodyId(resource, type);
      const condition = conditionOf(entry);
      if (condition === undefined) {
        if (method === 'POST') {
          assignedIds[index] = newId();
          if (entry.fullUrl) idMap.set(entry.fullUrl, `${type}/${assignedIds[index]}`);
        } else {
          // PUT Type/id: references to the entry's fullUrl (often a urn:uuid) mean that resource.
          const target = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(entry.request?.url ?? '');
          if (entry.fullUrl && target) idMap.set(entry.fullUrl, `${target[1]}/${target[2]}`);
        }
        continue;
      }
      const where = method === 'POST' ? 'ifNoneExist' : 'url';
      const pairs = parseConditionalQuery(context, condition, type, `Bundle.entry[${index}].request.${where}`);
      const key = claimKey(type, pairs);
      if (byCondition.has(key)) {
        throw badRequest(
          `Another entry of the transaction has the same condition (${key})`,
          `Bundle.entry[${index}].request`,
        );
      }
      const matches = prefetched.get(key) ?? (await findConditional(context, request, type, pairs, 2));
      if (matches.length > 1) throw preconditionFailed(`The condition ${key} matches more than one resource`);
      let id: string;
      if (matches.length === 1) {
        id = matches[0]._id;
        if (method === 'PUT' && resource.id !== undefined && resource.id !== id) {
          throw badRequest(
            `The resource id "${resource.id}" is not the id of the matched ${type}, "${id}"`,
            `${type}.id`,
          );
        }
        if (method === 'POST') {
          const doc = matches[0];
          resolvedByCondition.set(`${type}/${id}`, index);
          results[index] = {
            resource: doc.resource,
            response: {
              status: '200 OK',
              location: versionUrl(request, type, id, doc.v),
              etag: etag(doc.v),
              lastModified: new Date(httpDate(doc.ts)).toISOString(),
              outcome: allOk(`ifNoneExist matched ${type}/${id}; nothing created`),
            },
          };
        }
      } else {
        const clientId = method === 'PUT' ? resource.id : undefined;
        if (clientId !== undefined) await requireUnusedId(context, type, clientId);
        id = clientId ?? newId();
        claims[index] = key;
        if (method === 'POST') assignedIds[index] = id;
      }
      if (method === 'PUT') {
        prepared[index] = {
          ...entry,
          request: { ...entry.request, method: 'PUT', url: `${type}/${id}` },
          resource: { ...resource, id },
        };
      }
      byCondition.set(key, `${type}/${id}`);
      if (entry.fullUrl) idMap.set(entry.fullUrl, `${type}/${id}`);
    } catch (error) {
      if (error instanceof FhirError) throw entryError(index, error);
      throw error;
    }
  }

  // Conditional references: to an entry's own condition first, else to the one stored match.
  for (const [index, entry] of prepared.entries()) {
    await slice.pause();
    const found = new Set<string>();
    conditionalReferences(entry.resource, found);
    for (const reference of found) {
      if (idMap.has(reference)) continue;
      const [, type, query] = CONDITIONAL_REFERENCE.exec(reference) as RegExpExecArray;
      try {
        const pairs = parseConditionalQuery(context, query, type, `Bundle.entry[${index}].resource`);
        const own = byCondition.get(claimKey(type, pairs));
        if (own) {
          idMap.set(reference, own);
          continue;
        }
        const matches = await findConditional(context, request, type, pairs, 2);
        if (matches.length === 0) throw badRequest(`The conditional reference ${reference} matches no resource`);
        if (matches.length > 1)
          throw preconditionFailed(`The conditional reference ${reference} matches more than one resource`);
        idMap.set(reference, `${type}/${matches[0]._id}`);
        resolvedByCondition.set(`${type}/${matches[0]._id}`, index);
      } catch (error) {
        if (error instanceof FhirError) throw entryError(index, error);
        throw error;
      }
    }
  }

  const rewritten = prepared.map((entry) =>
    entry.resource ? { ...entry, resource: rewrite(entry.resource, idMap) as Resource } : entry,
  );
  return { entries: rewritten, assignedIds, claims, results, resolvedByCondition };
}
