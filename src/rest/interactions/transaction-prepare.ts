import type { BundleEntry, Resource } from '@medplum/fhirtypes';
import type { FhirRequest } from '../../fhir/request';
import { newId } from '../../store/resource-store';
import type { ServerContext } from '../context';

/** What a transaction knows before its first entry runs. */
export interface PreparedTransaction {
  /** The entries with every placeholder reference rewritten to the id it stands for. */
  entries: BundleEntry[];
  /** The id each POST entry will create with. */
  assignedIds: (string | undefined)[];
  /** Entries already answered during preparation (a conditional create that matched). */
  results: (BundleEntry | undefined)[];
}

/** Replaces every Reference.reference found in `idMap` (fullUrl → "Type/id"), anywhere in the resource. */
function rewrite(value: unknown, idMap: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewrite(v, idMap));
  if (value && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      result[key] = key === 'reference' && typeof v === 'string' && idMap.has(v) ? idMap.get(v) : rewrite(v, idMap);
    }
    return result;
  }
  return value;
}

/**
 * Assigns the ids of created resources up front and rewrites references to their fullUrls
 * (urn:uuid:..., or absolute URLs), so each entry can be staged with its final references.
 */
export async function prepareTransaction(
  _request: FhirRequest,
  _context: ServerContext,
  entries: BundleEntry[],
): Promise<PreparedTransaction> {
  const idMap = new Map<string, string>();
  const assignedIds = entries.map((entry) => {
    if (entry.request?.method !== 'POST' || !entry.resource) return undefined;
    const id = newId();
    if (entry.fullUrl) idMap.set(entry.fullUrl, `${entry.resource.resourceType}/${id}`);
    return id;
  });
  const rewritten = entries.map((entry) =>
    entry.resource ? { ...entry, resource: rewrite(entry.resource, idMap) as Resource } : entry,
  );
  return { entries: rewritten, assignedIds, results: new Array(entries.length) };
}
