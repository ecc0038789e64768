import type { Resource } from '@medplum/fhirtypes';
import type { NumberTextEntry } from '../fhir/number-text';

/**
 * How resources sit in MongoDB. One collection per resource type (named as the type, e.g.
 * "MedicationRequest") holds the current version of each resource; one collection, HISTORY_COLLECTION,
 * holds every version of every resource (including deletions), so system-level history is one query.
 *
 * FerretDB 1.x constraints shape this: no nested arrays, no keys with "." or a leading "$" (FHIR JSON
 * has neither), and only `{_id: value}` filters are answered without a scan, so hot paths go by _id.
 */
export const HISTORY_COLLECTION = '_history';
/** The intents of the commits in flight (src/store/journal.ts): what recovery needs to finish or discard one. */
export const INTENTS_COLLECTION = '_tx';
/**
 * The decision of each commit, inserted once: `committed` by its owner or `aborted` by recovery. Its
 * unique _id settles a race between the two, and its insert is the one write that makes a commit visible.
 */
export const DECISIONS_COLLECTION = '_commits';
/**
 * Claims on a conditional-create condition ("Patient?identifier=sys|val"): a unique _id that only one
 * of N racing creators can insert, since FerretDB has no partial unique indexes to do the same job.
 */
export const CLAIMS_COLLECTION = '_claims';

export interface ClaimDocument {
  _id: string;
  type: string;
  id: string;
  /** The commit that made the claim, so that an undo removes only its own claims. */
  tx: string;
}

/** The current version of a resource, in the collection named after its type. */
export interface CurrentDocument {
  /** The resource id. */
  _id: string;
  /** versionId as a number: the CAS guard of every update (`{_id, v: expected}`). */
  v: number;
  /** meta.lastUpdated as a Date, for _lastUpdated, _since and sorting. */
  ts: Date;
  /** True when the latest version is a deletion; `resource` then holds the last live version. */
  deleted?: boolean;
  /** The FHIR resource as served, with meta.versionId and meta.lastUpdated set. */
  resource: Resource;
  /**
   * The search index: values extracted with FHIRPath at write time, keyed by search parameter code.
   * Its layout belongs to src/search (see src/search/index-document.ts).
   */
  sp?: Record<string, unknown>;
  /** Compartments this resource belongs to, as "Patient/123" strings (from the R4 CompartmentDefinition). */
  compartments?: string[];
  /**
   * The numbers of `resource` whose written text a BSON double does not keep (`1.50`), by JSON
   * Pointer: put back on the resource when it is read (src/fhir/number-text.ts). Absent for nearly all.
   */
  nt?: NumberTextEntry[];
}

/**
 * A projection of a current document to what is served of it: everything but its search index `sp`,
 * which is most of a stored document, decoded by the engine and sent for nothing when not used.
 */
export const SERVED_FIELDS = { v: 1, ts: 1, deleted: 1, resource: 1, compartments: 1, nt: 1, tx: 1 } as const;

/** One version of a resource, in HISTORY_COLLECTION. */
export interface HistoryDocument {
  /** "Type/id/versionId": unique, so vread is a look-up by _id. */
  _id: string;
  type: string;
  id: string;
  v: number;
  ts: Date;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  deleted?: boolean;
  /** Absent for a deletion. */
  resource?: Resource;
  /** The version's Patient compartments (a deletion's: those of the version it deletes), for access filters. */
  compartments?: string[];
  /** As CurrentDocument.nt, for this version's resource. */
  nt?: NumberTextEntry[];
  /**
   * The commit that wrote this version: the version is visible only once that commit's decision says
   * committed (versions written before the commit protocol have none and are always visible).
   */
  tx?: string;
}

export function historyId(type: string, id: string, version: number): string {
  return `${type}/${id}/${version}`;
}
