import type { SearchParameter } from '@medplum/fhirtypes';
import { dropSearchParameterIndexes, ensureSearchParameterIndexes } from '../search/runtime-indexes';
import type { Db } from 'mongodb';
import type { ServerContext } from '../rest/context';
import { reindex } from '../search/reindex';
import { ReindexLog, type ReindexJob, type ReindexOwner } from '../search/reindex-log';
import type { SearchParam, SearchParameterRegistry } from '../search/registry';
import { membershipOf } from './cluster';
import type { DefinitionChange } from './definitions-feed';

/**
 * Rolling a runtime SearchParameter out to every server process on the database.
 *
 * The reindex fills in the values of resources written before the parameter existed; every write
 * after it extracts them itself. With several processes, "after" has to hold in each of them, so:
 *  1. every process that applies the version (start-up load, its own commit, or the definitions
 *     feed) registers it (its writes extract it from then on), waits for the commits it had in flight
 *     to finish (they were staged without it), and then acknowledges: a document in
 *     `_definition_acks` keyed by its incarnation and the definition version;
 *  2. the reindex job (`_reindex_jobs`, one per SearchParameter) waits until every live process (the
 *     `_processes` heartbeats) has acknowledged; a process that dies meanwhile drops out of the live
 *     list once its heartbeat is older than the lease, so it cannot hold the rollout up for longer;
 *  3. only then it scans, recording its position after every batch, and marks the job done; every
 *     process makes the parameter searchable when it sees the job done.
 * The process that committed the version claims the job; a job whose owner is dead (or that nobody
 * claimed within `claimGraceMs`) is claimed by whichever process sees it first, and resumed from its
 * recorded position. Claims and progress are compare-and-sets on the job's version and owner.
 */
export const DEFINITION_ACKS_COLLECTION = '_definition_acks';

interface DefinitionAck {
  /** "incarnation definition". */
  _id: string;
  incarnation: string;
  /** "SearchParameter/id/v". */
  definition: string;
  at: Date;
}

export interface RolloutOptions {
  /** Pause between checks of the acknowledgements; default 200 ms. */
  ackPollMs?: number;
  /** Age after which a job nobody claimed may be claimed by any process; default 5 s. */
  claimGraceMs?: number;
  /** A live process that has not acknowledged for this long is logged (once per job); default 30 s. */
  ackWarnMs?: number;
}

interface Registered {
  id: string;
  v: number;
  url: string;
  param: SearchParam;
}

export interface RolloutStatus {
  code: string;
  completed: boolean;
  done: number;
  total: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class SearchParameterRollout {
  private readonly log: ReindexLog;
  /** The version of each SearchParameter this process has registered, by resource id. */
  private readonly registered = new Map<string, Registered>();
  /** Jobs this process runs now ("id/v"). */
  private readonly running = new Set<string>();
  private readonly ackPollMs: number;
  private readonly claimGraceMs: number;
  private readonly ackWarnMs: number;

  constructor(
    private readonly context: ServerContext,
    private readonly registry: SearchParameterRegistry,
    /** Why a definition cannot be used (the module's write-time checks); such a version is not registered. */
    private readonly problems: (definition: SearchParameter) => unknown[],
    options: RolloutOptions = {},
  ) {
    this.log = new ReindexLog(context.store.db);
    this.ackPollMs = options.ackPollMs ?? 200;
    this.claimGraceMs = options.claimGraceMs ?? 5000;
    this.ackWarnMs = options.ackWarnMs ?? 30_000;
  }

  private get db(): Db {
    return this.context.store.db;
  }

  private get owner(): ReindexOwner {
    const { server, incarnation } = membershipOf(this.context);
    return { server, incarnation };
  }

  /** Applies one version of a SearchParameter (the subscriber of src/modules/definitions-feed). */
  async apply(change: DefinitionChange): Promise<void> {
    const before = this.registered.get(change.id);
    const definition = change.resource as SearchParameter | undefined;
    if (before) {
      this.registered.delete(change.id);
      // Same url: registering the new version replaces the old one in the registry.
      if (before.url !== definition?.url) this.registry.remove(before.url);
    }
    const key = `SearchParameter/${change.id}/${change.v}`;
    if (!definition) {
      this.background(async () => {
        await this.log.remove(change.id, change.v);
        if (before) await dropSearchParameterIndexes(this.db, before.param);
      }, key);
      return;
    }
    if (!definition.url || this.problems(definition).length) {
      // Not registered, so there is nothing to wait for; acknowledged all the same so no job waits on us.
      this.background(() => this.acknowledge(key), key);
      return;
    }
    if (change.source === 'load' && (await this.log.isDone(change.id, change.v))) {
      const param = this.registry.addActive(definition);
      this.registered.set(change.id, { id: change.id, v: change.v, url: definition.url, param });
      return;
    }
    const entry = { id: change.id, v: change.v, url: definition.url, param: this.registry.add(definition) };
    this.registered.set(change.id, entry);
    this.background(async () => {
      await this.acknowledge(key);
      await this.log.ensure(change.id, change.v);
      const job = await this.log.get(change.id);
      if (job) await this.takeOver(job, entry, change.source);
    }, key);
  }

  /** After every poll of the definitions feed: adopt finished jobs, take over orphaned ones. */
  async poll(): Promise<void> {
    const pending = [...this.registered.values()].filter((r) => r.param.status !== 'active');
    if (pending.length) {
      for (const job of await this.log.getMany(pending.map((r) => r.id))) {
        const entry = this.registered.get(job._id);
        if (entry && job.v === entry.v && job.state === 'done') {
          this.registry.setStatus(entry.param, 'active', { done: job.done, total: job.total });
        }
      }
    }
    for (const job of await this.log.unfinished()) {
      const entry = this.registered.get(job._id);
      if (entry && entry.v === job.v) await this.takeOver(job, entry, 'poll');
    }
  }

  /** `$reindex-status` from the job, so every process answers the same; undefined: not a usable parameter. */
  async status(id: string): Promise<RolloutStatus | undefined> {
    const doc = await this.context.store.read('SearchParameter', id);
    const definition = doc && !doc.deleted ? (doc.resource as SearchParameter) : undefined;
    if (!doc || !definition?.url || !definition.code) return undefined;
    const job = await this.log.get(id);
    const current = job?.v === doc.v ? job : undefined;
    const entry = this.registered.get(id);
    if (!current && entry?.v !== doc.v) return undefined;
    // Adopted here as well as at the next poll: a process that answers "completed" also searches on it.
    if (current?.state === 'done' && entry?.v === current.v && entry.param.status !== 'active') {
      this.registry.setStatus(entry.param, 'active', { done: current.done, total: current.total });
    }
    return {
      code: definition.code,
      completed: current?.state === 'done',
      done: current?.done ?? 0,
      total: current?.total ?? 0,
    };
  }

  private async acknowledge(definition: string): Promise<void> {
    const membership = membershipOf(this.context);
    // Commits staged before the registration did not extract the parameter: they must be finished
    // (and so visible to the scan) before the scan may start.
    await membership.drainCommits();
    try {
      await this.db.collection<DefinitionAck>(DEFINITION_ACKS_COLLECTION).insertOne({
        _id: `${membership.incarnation} ${definition}`,
        incarnation: membership.incarnation,
        definition,
        at: new Date(),
      });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 11000) throw error;
    }
  }

  /**
   * Claims the job if this process should run it: the committing process (or a restart of it) at
   * once, anyone once the owner is dead or the job has gone unclaimed for the grace period.
   */
  private async takeOver(job: ReindexJob, entry: Registered, source: DefinitionChange['source'] | 'poll') {
    if (job.v !== entry.v || job.state === 'done' || this.running.has(`${job._id}/${job.v}`)) return;
    const me = this.owner;
    let from: ReindexOwner | null = null;
    if (job.owner) {
      if (job.owner.incarnation === me.incarnation) return;
      if (await membershipOf(this.context).isAlive(job.owner)) return;
      from = job.owner;
    } else if (source === 'feed' || (source === 'poll' && Date.now() - job.updatedAt.getTime() < this.claimGraceMs)) {
      return;
    }
    const claimed = await this.log.claim(job._id, job.v, me, from);
    if (claimed) this.background(() => this.run(claimed, entry), claimed.definition);
  }

  private async run(job: ReindexJob, entry: Registered): Promise<void> {
    const runKey = `${job._id}/${job.v}`;
    if (this.running.has(runKey)) return;
    this.running.add(runKey);
    const me = this.owner;
    const wanted = () => this.registered.get(job._id) === entry;
    try {
      // A job taken over while scanning waited already: every process alive since has the definition.
      if (job.state !== 'scanning') {
        await this.log.update(job._id, job.v, me, { state: 'waiting' });
        if (!(await this.waitForAcknowledgements(job.definition, wanted))) return;
        if (!(await this.log.update(job._id, job.v, me, { state: 'scanning' }))) return;
      }
      // Triggers keep the new indexes from here on, so the scan's writes fill them as it goes.
      await ensureSearchParameterIndexes(this.db, entry.param);
      const finished = await reindex(this.db, this.registry, entry.param, {
        ...(job.cursor ? { from: job.cursor, done: job.done } : {}),
        onBatch: async (p) =>
          wanted() && (await this.log.update(job._id, job.v, me, { cursor: p.cursor, done: p.done, total: p.total })),
      });
      if (!finished) return;
      const { done = 0, total = 0 } = entry.param.progress ?? {};
      await this.log.update(job._id, job.v, me, { state: 'done', done, total });
      await this.db.collection<DefinitionAck>(DEFINITION_ACKS_COLLECTION).deleteMany({ definition: job.definition });
    } catch (error) {
      // Handed back, so that the next poll (of any process) resumes it from the recorded position.
      await this.log.update(job._id, job.v, me, { owner: null }).catch(() => false);
      throw error;
    } finally {
      this.running.delete(runKey);
    }
  }

  /** True once every live process has acknowledged; false if the version stopped mattering meanwhile. */
  private async waitForAcknowledgements(definition: string, wanted: () => boolean): Promise<boolean> {
    const membership = membershipOf(this.context);
    const acks = this.db.collection<DefinitionAck>(DEFINITION_ACKS_COLLECTION);
    const started = Date.now();
    let warned = false;
    for (;;) {
      if (!wanted()) return false;
      const live = await membership.live();
      const acked = new Set((await acks.find({ definition }).toArray()).map((a) => a.incarnation));
      const missing = live.filter((incarnation) => !acked.has(incarnation));
      if (!missing.length) return true;
      if (!warned && Date.now() - started > this.ackWarnMs) {
        warned = true;
        this.context.logger.warn({ definition, missing }, 'reindex waits for live servers to register the definition');
      }
      await sleep(this.ackPollMs);
    }
  }

  private background(work: () => Promise<unknown>, definition: string): void {
    work().catch((error: unknown) => this.context.logger.error({ err: error, definition }, 'search parameter rollout'));
  }
}
