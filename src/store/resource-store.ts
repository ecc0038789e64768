import type { Meta, Resource } from '@medplum/fhirtypes';
import type { Db, Filter, IndexDescription, MongoClient } from 'mongodb';
import { randomUUID } from 'node:crypto';
import {
  ClaimDocument,
  CLAIMS_COLLECTION,
  CurrentDocument,
  HISTORY_COLLECTION,
  HistoryDocument,
  historyId,
  JOURNAL_COLLECTION,
} from './documents';
import { Journal, StagedWrite } from './journal';
import { WriteGate } from './write-gate';

/** What the store asks of the search and compartment modules for each version it writes. */
export type StoreIndexer = (resource: Resource) => Pick<CurrentDocument, 'sp' | 'compartments'>;

/** A write as the handlers plan it: the store assigns the version and the timestamp. */
export interface PlannedWrite {
  type: string;
  id: string;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The current document this write replaces, exactly as read (its `v` is the CAS guard); null to create. */
  previous: CurrentDocument | null;
  /** The new content; absent for a deletion. */
  resource?: Resource;
  /** Conditional-create conditions to claim atomically with this write. */
  claims?: string[];
}

export interface HistoryQuery {
  type?: string;
  id?: string;
  since?: Date;
  /** Versions current at some point in [at.start, at.end). */
  at?: { start: Date; end: Date };
  count: number;
  /** Resume after this (ts, _id) position, newest first. */
  after?: { ts: Date; key: string };
}

/** The indexes of every resource collection, besides `_id` and those modules add (search's own). */
export const TYPE_INDEXES: readonly IndexDescription[] = [
  { key: { ts: -1, _id: -1 }, name: 'last_updated' },
  { key: { compartments: 1, ts: -1 }, name: 'compartments' },
];

function withoutIdentity(resource: Resource): Partial<Resource> {
  const { resourceType: _t, id: _i, meta: _m, ...rest } = resource;
  return rest;
}

export function newId(): string {
  return randomUUID();
}

/**
 * The one place that reads and writes resources. Every version is kept; every write goes through the
 * journal (src/store/journal.ts), so single writes and Bundle transactions share one commit path.
 */
export class ResourceStore {
  readonly journal: Journal;
  /** Commits replace current documents under it shared; a reindex batch takes it exclusively. */
  readonly writeGate = new WriteGate();
  private indexer: StoreIndexer = () => ({});
  private readonly extraIndexes = new Map<string, IndexDescription[]>();
  private readonly indexedTypes = new Set<string>();

  /** @param transactions a client whose deployment has multi-document transactions, to add isolation */
  constructor(
    readonly db: Db,
    transactions?: MongoClient,
  ) {
    this.journal = new Journal(db, transactions, this.writeGate);
  }

  setIndexer(indexer: StoreIndexer): void {
    this.indexer = indexer;
  }

  /** Registers MongoDB indexes a module needs on a type's collection (search adds its own). */
  addIndexes(type: string, indexes: IndexDescription[]): void {
    this.extraIndexes.set(type, [...(this.extraIndexes.get(type) ?? []), ...indexes]);
  }

  /** Creates the indexes of every type named (the medication set at start-up) and of history/journal. */
  async ensureIndexes(types: Iterable<string>): Promise<void> {
    await this.createIndexes(HISTORY_COLLECTION, [
      { key: { type: 1, id: 1, v: -1 }, name: 'instance_history' },
      { key: { ts: -1, _id: -1 }, name: 'system_history' },
      { key: { type: 1, ts: -1, _id: -1 }, name: 'type_history' },
    ]);
    await this.createIndexes(JOURNAL_COLLECTION, [{ key: { startedAt: 1 }, name: 'journal_age' }]);
    for (const type of types) await this.ensureTypeIndexes(type);
  }

  private async ensureTypeIndexes(type: string): Promise<void> {
    if (this.indexedTypes.has(type)) return;
    this.indexedTypes.add(type);
    const indexes: IndexDescription[] = [...TYPE_INDEXES, ...(this.extraIndexes.get(type) ?? [])];
    await this.createIndexes(type, indexes);
  }

  /**
   * One createIndex call per index: FerretDB 1.24 panics (and drops the connection) on a createIndexes
   * command with several indexes that already exist, which is every start after the first.
   */
  private async createIndexes(collection: string, indexes: IndexDescription[]): Promise<void> {
    for (const { key, ...options } of indexes) {
      await this.db.collection(collection).createIndex(key as Record<string, 1 | -1>, options);
    }
  }

  async read(type: string, id: string): Promise<CurrentDocument | null> {
    return this.db.collection<CurrentDocument>(type).findOne({ _id: id });
  }

  async vread(type: string, id: string, version: number): Promise<HistoryDocument | null> {
    return this.db.collection<HistoryDocument>(HISTORY_COLLECTION).findOne({ _id: historyId(type, id, version) });
  }

  /**
   * Assigns versions and the timestamp and builds the documents to store, without writing anything: a
   * transaction Bundle stages every entry first and commits them together.
   */
  stage(writes: PlannedWrite[], ts = new Date()): StagedWrite[] {
    return writes.map((write) => {
      const v = (write.previous?.v ?? 0) + 1;
      if (!write.resource) {
        if (!write.previous) throw new Error('a deletion needs the version it deletes');
        const next: CurrentDocument = {
          _id: write.id,
          v,
          ts,
          deleted: true,
          resource: write.previous.resource,
          compartments: write.previous.compartments,
        };
        return {
          type: write.type,
          id: write.id,
          previous: write.previous,
          next,
          method: write.method,
          claims: write.claims,
        };
      }
      const meta: Meta = { ...(write.resource.meta ?? {}), versionId: String(v), lastUpdated: ts.toISOString() };
      // resourceType, id and meta first, as the spec's examples print them.
      const resource = {
        resourceType: write.resource.resourceType,
        id: write.id,
        meta,
        ...withoutIdentity(write.resource),
      } as Resource;
      const next: CurrentDocument = { _id: write.id, v, ts, resource, ...this.indexer(resource) };
      return {
        type: write.type,
        id: write.id,
        previous: write.previous,
        next,
        method: write.method,
        claims: write.claims,
      };
    });
  }

  /** Commits staged writes all-or-nothing; throws VersionConflictError when one lost a race. */
  async commitStaged(staged: StagedWrite[]): Promise<CurrentDocument[]> {
    // A re-sent transaction whose entries all matched or changed nothing has nothing to commit.
    if (!staged.length) return [];
    for (const write of staged) await this.ensureTypeIndexes(write.type);
    await this.journal.commit(staged);
    return staged.map((s) => s.next);
  }

  /**
   * Who holds a conditional-create claim, and whether the commit that took it is still running (its
   * journal entry exists). A finished claim whose resource no longer matches the condition is stale.
   */
  async claimState(key: string): Promise<{ claim: ClaimDocument; inFlight: boolean } | undefined> {
    const claim = await this.db.collection<ClaimDocument>(CLAIMS_COLLECTION).findOne({ _id: key });
    if (!claim) return undefined;
    const journal = await this.db.collection<{ _id: string }>(JOURNAL_COLLECTION).findOne({ _id: claim.tx });
    return { claim, inFlight: journal !== null };
  }

  /** Drops a stale claim; guarded by its commit id, so a claim taken anew meanwhile stays. */
  async releaseClaim(claim: ClaimDocument): Promise<void> {
    await this.db.collection<ClaimDocument>(CLAIMS_COLLECTION).deleteOne({ _id: claim._id, tx: claim.tx });
  }

  /** Stages and commits in one step: the path of every single-resource interaction. */
  async commit(writes: PlannedWrite[]): Promise<CurrentDocument[]> {
    return this.commitStaged(this.stage(writes));
  }

  async history(query: HistoryQuery): Promise<HistoryDocument[]> {
    const filter: Filter<HistoryDocument> = {};
    if (query.type) filter.type = query.type;
    if (query.id) filter.id = query.id;
    const ts: { $gte?: Date; $lt?: Date } = {};
    if (query.since) ts.$gte = query.since;
    if (query.at) ts.$lt = query.at.end;
    if (ts.$gte || ts.$lt) filter.ts = ts;
    if (query.after) {
      filter.$or = [{ ts: { $lt: query.after.ts } }, { ts: query.after.ts, _id: { $lt: query.after.key } }];
    }
    const sort = { ts: -1, _id: -1 } as const;
    if (!query.at) {
      return this.db
        .collection<HistoryDocument>(HISTORY_COLLECTION)
        .find(filter)
        .sort(sort)
        .limit(query.count)
        .toArray();
    }
    // _at: a version counts if it was current at some point in the window, i.e. it was written before
    // the window ends and the next version of the same resource (if any) was written after it starts.
    const at = query.at;
    const result: HistoryDocument[] = [];
    const cursor = this.db.collection<HistoryDocument>(HISTORY_COLLECTION).find(filter).sort(sort);
    const newerSeen = new Map<string, Date>();
    const supersededBeforeStart = new Set<string>();
    for await (const doc of cursor) {
      const key = `${doc.type}/${doc.id}`;
      const newer = newerSeen.get(key);
      newerSeen.set(key, doc.ts);
      if (supersededBeforeStart.has(key)) continue;
      if (newer && newer <= at.start) {
        supersededBeforeStart.add(key);
        continue;
      }
      result.push(doc);
      if (result.length >= query.count) break;
    }
    return result;
  }
}
