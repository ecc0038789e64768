import type { Meta, Resource } from '@medplum/fhirtypes';
import { BSON, type Db, type Filter, type IndexDescription, type MongoClient } from 'mongodb';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { collectNumberTexts, restoreNumberTexts } from '../fhir/number-text';
import { tooLarge } from '../fhir/outcome';
import {
  ClaimDocument,
  CLAIMS_COLLECTION,
  CurrentDocument,
  DECISIONS_COLLECTION,
  HISTORY_COLLECTION,
  HistoryDocument,
  historyId,
  SERVED_FIELDS,
} from './documents';
import { withEngineRetry } from './engine-errors';
import { duplicateKeyFailures, Journal, StagedWrite, type SideDocument } from './journal';
import { ProcessRegistry } from './processes';
import { directReader, ReadView, type Reader, type Restriction } from './read-view';

/** Refuses before anything is written a version the engine could not store (16 MiB per document). */
function checkDocumentSize(write: StagedWrite): void {
  const bytes = BSON.calculateObjectSize(write.next as unknown as BSON.Document);
  if (bytes > MAX_DOCUMENT_BYTES) {
    throw tooLarge(
      `${write.type}/${write.id} would be stored as ${bytes} bytes with its search values, over the database's ` +
        `limit of ${MAX_DOCUMENT_BYTES} bytes per resource`,
    );
  }
}

/**
 * What the store asks of the search and compartment modules for each version it writes, or rebuilds
 * from history in recovery (a version accepted once, indexed whatever the limits are now).
 */
export type StoreIndexer = (
  resource: Resource,
  purpose?: 'write' | 'rebuild',
) => Pick<CurrentDocument, 'sp' | 'compartments'>;

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
  /** The requester's access filter on versions (src/auth/access-policy.ts), ANDed to the query. */
  restriction?: Filter<HistoryDocument>;
}

/** The indexes of every resource collection, besides `_id` and those modules add (search's own). */
export const TYPE_INDEXES: readonly IndexDescription[] = [
  { key: { ts: -1, _id: -1 }, name: 'last_updated' },
  { key: { compartments: 1, ts: -1 }, name: 'compartments' },
  // The sensitivity labels (src/auth/labels.ts): an uncleared requester's every read and search leaves
  // out the labelled ones, which the embedded engine then counts and pages in SQL rather than in Go.
  { key: { 'resource.meta.security.code': 1 }, name: 'security_labels' },
];

function withoutIdentity(resource: Resource): Partial<Resource> {
  const { resourceType: _t, id: _i, meta: _m, ...rest } = resource;
  return rest;
}

export function newId(): string {
  return randomUUID();
}

/** How long drainCommits waits for a staged write whose commit never comes (its transaction failed). */
const STAGED_WAIT_MS = 30_000;

/** MongoDB's (and FerretDB's) largest document, less room for the engine's own fields. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 - 16 * 1024;

export interface ResourceStoreOptions {
  /** A client whose deployment has multi-document transactions, to replace current documents in one. */
  transactions?: MongoClient;
  /** SERVER_ID: identifies this server across restarts, so a restart recovers its own commits at once. */
  serverId?: string;
  /** JOURNAL_LEASE_MS: a process whose heartbeat is older than this is taken for dead. */
  leaseMs?: number;
  /** CLOCK_SKEW_MS: how far the clocks of the server processes sharing the database may disagree. */
  clockSkewMs?: number;
  /** COMMIT_GROUPS: groups of commits run at once, later ones waiting to go together; 0: none wait. */
  commitGroups?: number;
  onBackgroundError?: (error: unknown) => void;
}

/**
 * The one place that reads and writes resources. Every version is kept; every write goes through the
 * journal (src/store/journal.ts), so single writes and Bundle transactions share one commit path.
 */
export class ResourceStore {
  readonly journal: Journal;
  readonly processes: ProcessRegistry;
  private indexer: StoreIndexer = () => ({});
  private readonly extraIndexes = new Map<string, IndexDescription[]>();
  private readonly indexedTypes = new Set<string>();
  private readonly clockSkewMs: number;
  private started?: Promise<void>;
  /** Writes staged and not yet committed, with when: drainCommits waits for them too. */
  private readonly stagedAt = new Map<StagedWrite, number>();
  /** Types whose resources are written once and never changed: their one version is the current document. */
  private readonly immutableTypes = new Set<string>();

  constructor(
    readonly db: Db,
    options: ResourceStoreOptions = {},
  ) {
    this.clockSkewMs = options.clockSkewMs ?? 250;
    this.processes = new ProcessRegistry(db, {
      serverId: options.serverId ?? `${hostname()}:${process.pid}`,
      leaseMs: options.leaseMs ?? 10_000,
      onError: options.onBackgroundError,
    });
    this.journal = new Journal(db, {
      processes: this.processes,
      rebuild: (version, previous) => this.currentFromHistory(version, previous),
      transactions: options.transactions,
      maxGroups: options.commitGroups === 0 ? Infinity : options.commitGroups,
    });
  }

  /** Registers this process (its heartbeat); commits wait for it, so a store used directly works too. */
  start(): Promise<void> {
    this.started ??= this.processes.start();
    return this.started;
  }

  async stop(): Promise<void> {
    await this.journal.drain();
    if (this.started) await this.processes.stop();
  }

  /**
   * Resolves once the writes this process had staged or in commit when called have finished: a
   * definition registered before the call is then in the search values of every later commit.
   */
  async drainCommits(): Promise<void> {
    // Staged writes carry the search values of the definitions known when they were staged.
    const staged = [...this.stagedAt.keys()];
    const deadline = Date.now() + STAGED_WAIT_MS;
    while (staged.some((w) => this.stagedAt.has(w)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await this.journal.drain();
  }

  /**
   * The reads of one request, aligned on commit boundaries (src/store/read-view.ts); `deadline` (epoch
   * ms) is the request's time budget, which bounds every read of the view.
   */
  readView(restriction?: Restriction, deadline?: number, abandoned?: (query: Promise<unknown>) => void): ReadView {
    return new ReadView(this.db, this.journal, this.clockSkewMs, restriction, deadline, abandoned);
  }

  /** Reads straight from the database, for start-up and background work. */
  directReader(): Reader {
    return directReader(this.db);
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
    // Every read asks which commits are not settled yet: a range on a small collection.
    await this.createIndexes(DECISIONS_COLLECTION, [{ key: { settled: 1 }, name: 'decision_settled' }]);
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

  /** The current document; pass the request's ReadView where the answer is shown to a client. */
  async read(
    type: string,
    id: string,
    reader: Reader = this.directReader(),
    projection?: Record<string, 1>,
  ): Promise<CurrentDocument | null> {
    return reader.findOne<CurrentDocument>(type, { _id: id }, projection ? { projection } : undefined);
  }

  /** A version, once the commit that wrote it is decided committed. */
  async vread(
    type: string,
    id: string,
    version: number,
    restriction?: Filter<HistoryDocument>,
  ): Promise<HistoryDocument | null> {
    if (this.immutableTypes.has(type)) {
      const byVersion: Filter<CurrentDocument> = { _id: id, v: version };
      const current = await this.db
        .collection<CurrentDocument>(type)
        .findOne(restriction ? { $and: [byVersion, restriction as Filter<CurrentDocument>] } : byVersion, {
          projection: SERVED_FIELDS,
        });
      return current && !current.deleted ? versionOfImmutable(type, current) : null;
    }
    const byId: Filter<HistoryDocument> = { _id: historyId(type, id, version) };
    const doc = await this.db
      .collection<HistoryDocument>(HISTORY_COLLECTION)
      .findOne(restriction ? { $and: [byId, restriction] } : byId);
    if (!doc) return null;
    return (await this.visibleVersions([doc]))[0] ?? null;
  }

  /** Drops the versions of commits that are undecided or aborted (their own tx says which). */
  private async visibleVersions(docs: HistoryDocument[]): Promise<HistoryDocument[]> {
    const visible = await this.journal.visibility(docs.flatMap((d) => (d.tx ? [d.tx] : [])));
    return docs
      .filter((d) => !d.tx || visible.get(d.tx))
      .map(({ tx: _tx, ...version }) => {
        restoreNumberTexts(version.resource, version.nt);
        return version;
      });
  }

  /** The current document a history version makes, as recovery rebuilds it (search values included). */
  private currentFromHistory(version: HistoryDocument, previous: CurrentDocument | null): CurrentDocument {
    if (version.deleted || !version.resource) {
      if (!previous) throw new Error(`${version._id}: a deletion needs the version it deletes`);
      return {
        _id: version.id,
        v: version.v,
        ts: version.ts,
        deleted: true,
        resource: previous.resource,
        compartments: previous.compartments,
        ...(previous.nt ? { nt: previous.nt } : {}),
      };
    }
    return {
      _id: version.id,
      v: version.v,
      ts: version.ts,
      resource: version.resource,
      ...this.indexer(version.resource, 'rebuild'),
      ...(version.nt ? { nt: version.nt } : {}),
    };
  }

  /**
   * Assigns versions and the timestamp and builds the documents to store, without writing anything: a
   * transaction Bundle stages every entry first and commits them together.
   */
  stage(writes: PlannedWrite[], ts = new Date()): StagedWrite[] {
    const staged = this.stageWrites(writes, ts);
    // Until committed or given up (a transaction that fails later leaves its writes: forgotten by age).
    const now = Date.now();
    // Oldest first (insertion order), so the walk stops at the first one still young.
    for (const [write, at] of this.stagedAt) {
      if (at >= now - STAGED_WAIT_MS) break;
      this.stagedAt.delete(write);
    }
    for (const write of staged) this.stagedAt.set(write, now);
    return staged;
  }

  private stageWrites(writes: PlannedWrite[], ts: Date): StagedWrite[] {
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
          ...(write.previous.nt ? { nt: write.previous.nt } : {}),
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
      const nt = collectNumberTexts(resource);
      if (nt) next.nt = nt;
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
  async commitStaged(
    staged: StagedWrite[],
    check?: (write: StagedWrite) => void,
    sides: SideDocument[] = [],
  ): Promise<CurrentDocument[]> {
    // A re-sent transaction whose entries all matched or changed nothing has nothing to commit.
    if (!staged.length) return [];
    try {
      if (check) for (const write of staged) check(write);
      for (const write of staged) checkDocumentSize(write);
      for (const write of staged) await this.ensureTypeIndexes(write.type);
      await this.start();
      await this.journal.commit(staged, sides);
    } finally {
      for (const write of staged) this.stagedAt.delete(write);
    }
    return staged.map((s) => s.next);
  }

  /**
   * Who holds a conditional-create claim, and whether the commit that took it is still running (its
   * journal entry exists). A finished claim whose resource no longer matches the condition is stale.
   */
  async claimState(key: string): Promise<{ claim: ClaimDocument; inFlight: boolean } | undefined> {
    const claim = await this.db.collection<ClaimDocument>(CLAIMS_COLLECTION).findOne({ _id: key });
    if (!claim) return undefined;
    return { claim, inFlight: await this.journal.inFlightCommit(claim.tx) };
  }

  /** Drops a stale claim; guarded by its commit id, so a claim taken anew meanwhile stays. */
  async releaseClaim(claim: ClaimDocument): Promise<void> {
    await this.db.collection<ClaimDocument>(CLAIMS_COLLECTION).deleteOne({ _id: claim._id, tx: claim.tx });
  }

  /**
   * Declares a type whose resources are created and never updated or deleted (the audit trail, which
   * the API refuses to change): vread and its history are answered from the current documents, so
   * appendImmutable can store them without a history copy, and system history leaves them out.
   */
  declareImmutable(type: string): void {
    this.immutableTypes.add(type);
  }

  /**
   * Appends resources of an immutable type: each is its only version, so it needs no history copy, no
   * version lock and no journal entry; one insert makes each durable on its own (a batch cut short by a
   * crash keeps the events it stored, which are independent of each other). Ids are the resources'
   * own, so a retried batch stores nothing twice.
   */
  async appendImmutable(type: string, resources: Resource[]): Promise<void> {
    if (!this.immutableTypes.has(type)) throw new Error(`${type} is not declared immutable`);
    if (!resources.length) return;
    const staged = this.stageWrites(
      resources.map((resource) => ({
        type,
        id: resource.id ?? newId(),
        method: 'POST' as const,
        previous: null,
        resource,
      })),
      new Date(),
    );
    for (const write of staged) checkDocumentSize(write);
    await this.ensureTypeIndexes(type);
    await this.start();
    const collection = this.db.collection<CurrentDocument>(type);
    try {
      await withEngineRetry(() =>
        collection.insertMany(
          staged.map((w) => w.next),
          { ordered: false },
        ),
      );
    } catch (error) {
      // Stored by an earlier attempt whose answer was lost: the same id is the same event.
      if (!duplicateKeyFailures(error)) throw error;
    }
  }

  /** Stages and commits in one step: the path of every single-resource interaction. */
  async commit(
    writes: PlannedWrite[],
    check?: (write: StagedWrite) => void,
    sides: SideDocument[] = [],
  ): Promise<CurrentDocument[]> {
    return this.commitStaged(this.stage(writes), check, sides);
  }

  async history(query: HistoryQuery): Promise<HistoryDocument[]> {
    if (query.type && this.immutableTypes.has(query.type)) return this.immutableHistory({ ...query, type: query.type });
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
    // Newest first, in batches whose versions of undecided or aborted commits are dropped.
    const cursor = this.db
      .collection<HistoryDocument>(HISTORY_COLLECTION)
      .find(query.restriction ? { $and: [filter, query.restriction] } : filter)
      .sort({ ts: -1, _id: -1 })
      .batchSize(Math.min(query.count + 10, 1000));
    const result: HistoryDocument[] = [];
    // _at: a version counts if it was current at some point in the window, i.e. it was written before
    // the window ends and the next version of the same resource (if any) was written after it starts.
    const newerSeen = new Map<string, Date>();
    const supersededBeforeStart = new Set<string>();
    const keep = (doc: HistoryDocument): void => {
      // Versions stored by earlier releases, or with a write's own commit: the type's history is its documents.
      if (this.immutableTypes.has(doc.type)) return;
      if (query.at) {
        const key = `${doc.type}/${doc.id}`;
        const newer = newerSeen.get(key);
        newerSeen.set(key, doc.ts);
        if (supersededBeforeStart.has(key)) return;
        if (newer && newer <= query.at.start) {
          supersededBeforeStart.add(key);
          return;
        }
      }
      result.push(doc);
    };
    let batch: HistoryDocument[] = [];
    const flush = async () => {
      for (const doc of await this.visibleVersions(batch)) {
        if (result.length < query.count) keep(doc);
      }
      batch = [];
    };
    try {
      for await (const doc of cursor) {
        batch.push(doc);
        if (batch.length >= query.count - result.length + 5) await flush();
        if (result.length >= query.count) break;
      }
      if (result.length < query.count) await flush();
    } finally {
      await cursor.close();
    }
    return result;
  }

  /**
   * The history of an immutable type: its current documents, one version each, newest first. Nothing
   * is superseded, so `_at` is `_since`'s bound on the other side; the resume key is the version's id.
   */
  private async immutableHistory(query: HistoryQuery & { type: string }): Promise<HistoryDocument[]> {
    const filter: Filter<CurrentDocument> = {};
    if (query.id) filter._id = query.id;
    const ts: { $gte?: Date; $lt?: Date } = {};
    if (query.since) ts.$gte = query.since;
    if (query.at) ts.$lt = query.at.end;
    if (ts.$gte || ts.$lt) filter.ts = ts;
    if (query.after) {
      const afterId = query.after.key.split('/')[1] ?? '';
      filter.$or = [{ ts: { $lt: query.after.ts } }, { ts: query.after.ts, _id: { $lt: afterId } }];
    }
    const restriction = query.restriction as Filter<CurrentDocument> | undefined;
    const docs = await this.db
      .collection<CurrentDocument>(query.type)
      .find(restriction ? { $and: [filter, restriction] } : filter, { projection: SERVED_FIELDS })
      .sort({ ts: -1, _id: -1 })
      .limit(query.count)
      .toArray();
    return docs.filter((d) => !d.deleted).map((d) => versionOfImmutable(query.type, d));
  }
}

/** The one version of an immutable type's resource, as history holds versions. */
function versionOfImmutable(type: string, doc: CurrentDocument): HistoryDocument {
  restoreNumberTexts(doc.resource, doc.nt);
  return {
    _id: historyId(type, doc._id, doc.v),
    type,
    id: doc._id,
    v: doc.v,
    ts: doc.ts,
    method: 'POST',
    resource: doc.resource,
    ...(doc.compartments ? { compartments: doc.compartments } : {}),
  };
}
