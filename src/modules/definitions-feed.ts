import type { Resource } from '@medplum/fhirtypes';
import type { ServerContext } from '../rest/context';
import type { CurrentDocument, HistoryDocument } from '../store/documents';

/**
 * Runtime definitions (profiles, value sets, code systems, SearchParameters, check PlanDefinitions)
 * live in memory in every server process, and any process may commit a new version. This module is
 * the one way a version reaches the modules that use it, whichever process committed it:
 *
 * - at start-up, a subscription loads the current documents of its types;
 * - in the committing process, the afterCommit interceptor delivers the version at once (so a client
 *   that wrote a profile can use it in its next request);
 * - in every process, the feed (startDefinitionsFeed) reads the versions committed since its last poll
 *   from the history collection, about once a second, and delivers them too.
 *
 * Each subscription remembers the version it last applied per resource, so a version arriving by two
 * paths (or twice through the overlap window) is applied once, and an older one never after a newer.
 */

/** One version of a definition as a module sees it. */
export interface DefinitionChange {
  type: string;
  id: string;
  v: number;
  /** The new content; undefined when this version deletes the resource. */
  resource?: Resource;
  /** What this subscription had applied for the resource before (a deletion's history carries no content). */
  previous?: Resource;
  /** start-up load, a commit of this process, or the feed (a commit of any process). */
  source: 'load' | 'commit' | 'feed';
}

export type DefinitionSubscriber = (change: DefinitionChange) => Promise<void> | void;

interface Version {
  type: string;
  id: string;
  v: number;
  resource?: Resource;
}

class Subscription {
  private readonly applied = new Map<string, { v: number; resource?: Resource }>();

  constructor(
    readonly types: ReadonlySet<string>,
    private readonly apply: DefinitionSubscriber,
  ) {}

  async deliver(version: Version, source: DefinitionChange['source']): Promise<void> {
    const key = `${version.type}/${version.id}`;
    const seen = this.applied.get(key);
    if (seen && seen.v >= version.v) return;
    // Recorded before applying, so a concurrent delivery of the same version (commit and feed) is skipped.
    this.applied.set(key, { v: version.v, resource: version.resource });
    await this.apply({ ...version, previous: seen?.resource, source });
  }
}

/** The subscriptions of one server context, and the hooks the feed runs after each poll. */
export class DefinitionHub {
  private readonly subscriptions: Subscription[] = [];
  private readonly pollHooks: (() => Promise<void>)[] = [];
  /** When the first start-up load began: the feed's first poll reads from before it (see startDefinitionsFeed). */
  loadStartedAt?: Date;

  constructor(private readonly context: ServerContext) {
    context.interceptors.push({
      name: 'definitions',
      afterCommit: async (committed) => {
        for (const { type, doc } of committed) await this.deliver(fromCurrent(type, doc), 'commit');
      },
    });
  }

  /** Types some module subscribed to: what the feed reads. */
  get types(): string[] {
    return [...new Set(this.subscriptions.flatMap((s) => [...s.types]))];
  }

  /**
   * Subscribes `apply` to versions of `types` and applies the stored current documents first (in the
   * order of `types`: code systems before the value sets that include them, for example).
   */
  async subscribe(types: string[], apply: DefinitionSubscriber): Promise<void> {
    this.loadStartedAt ??= new Date();
    const subscription = new Subscription(new Set(types), apply);
    this.subscriptions.push(subscription);
    for (const type of types) {
      const current = this.context.store.db.collection<CurrentDocument>(type).find({ deleted: { $ne: true } });
      for await (const doc of current) await subscription.deliver(fromCurrent(type, doc), 'load');
    }
  }

  /** Work a module repeats after every poll of the feed (the search module's reindex hand-over). */
  onPoll(hook: () => Promise<void>): void {
    this.pollHooks.push(hook);
  }

  async deliver(version: Version, source: DefinitionChange['source']): Promise<void> {
    for (const subscription of this.subscriptions) {
      if (!subscription.types.has(version.type)) continue;
      try {
        await subscription.deliver(version, source);
      } catch (error) {
        // One module's failure must not keep the others from the version (nor stop the feed).
        this.context.logger.error(
          { err: error, definition: `${version.type}/${version.id}/${version.v}` },
          'applying a definition failed',
        );
      }
    }
  }

  async runPollHooks(): Promise<void> {
    for (const hook of this.pollHooks) {
      try {
        await hook();
      } catch (error) {
        this.context.logger.error({ err: error }, 'definitions poll hook failed');
      }
    }
  }
}

const hubs = new WeakMap<ServerContext, DefinitionHub>();

/** The definition hub of a server context, created (with its afterCommit interceptor) on first use. */
export function definitionsOf(context: ServerContext): DefinitionHub {
  let hub = hubs.get(context);
  if (!hub) hubs.set(context, (hub = new DefinitionHub(context)));
  return hub;
}

function fromCurrent(type: string, doc: CurrentDocument): Version {
  return { type, id: doc._id, v: doc.v, ...(doc.deleted ? {} : { resource: doc.resource }) };
}

function fromHistory(doc: HistoryDocument): Version {
  return { type: doc.type, id: doc.id, v: doc.v, ...(doc.deleted ? {} : { resource: doc.resource }) };
}

export interface DefinitionsFeedOptions {
  /** Pause between polls; default 1000 ms (definitions are visible everywhere within about that). */
  intervalMs?: number;
  /**
   * How far behind the previous poll each poll reads: a version's `ts` is taken before its commit
   * finishes, so a commit slower than this (or a clock skew between servers larger than it) could be
   * missed. Default 60 s.
   */
  overlapMs?: number;
  /** History page size. */
  pageSize?: number;
}

export interface DefinitionsFeed {
  stop(): Promise<void>;
}

const feeds = new WeakMap<ServerContext, DefinitionsFeed>();

/**
 * Starts polling the history collection for definitions committed by any process. Call once the
 * modules are registered; a second call for the same context returns the running feed.
 */
export function startDefinitionsFeed(context: ServerContext, options: DefinitionsFeedOptions = {}): DefinitionsFeed {
  const existing = feeds.get(context);
  if (existing) return existing;
  const hub = definitionsOf(context);
  const intervalMs = options.intervalMs ?? 1000;
  const overlapMs = options.overlapMs ?? 60_000;
  const pageSize = options.pageSize ?? 100;
  // History _ids already delivered within the window, so the overlap re-reads cost no re-delivery.
  const delivered = new Map<string, number>();
  let since = new Date((hub.loadStartedAt ?? new Date()).getTime() - overlapMs);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> = Promise.resolve();

  const poll = async (): Promise<void> => {
    // The next poll reads from (this poll's start - overlap): whatever commits after this read has a
    // ts later than that, unless its commit outlasts the overlap.
    const startedAt = Date.now();
    const versions: HistoryDocument[] = [];
    for (const type of hub.types) {
      let after: { ts: Date; key: string } | undefined;
      for (;;) {
        const page = await context.store.history({ type, since, count: pageSize, ...(after ? { after } : {}) });
        versions.push(...page.filter((doc) => !delivered.has(doc._id)));
        if (page.length < pageSize) break;
        const last = page[page.length - 1];
        after = { ts: last.ts, key: last._id };
      }
    }
    // Oldest first, so a resource's versions arrive in order.
    versions.sort((a, b) => a.ts.getTime() - b.ts.getTime() || a.v - b.v);
    for (const doc of versions) {
      await hub.deliver(fromHistory(doc), 'feed');
      delivered.set(doc._id, doc.ts.getTime());
    }
    since = new Date(startedAt - overlapMs);
    for (const [id, ts] of delivered) if (ts < since.getTime()) delivered.delete(id);
    await hub.runPollHooks();
  };

  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      polling = poll()
        .catch((error: unknown) => context.logger.error({ err: error }, 'definitions feed poll failed'))
        .finally(schedule);
    }, intervalMs);
    timer.unref();
  };
  schedule();

  const feed: DefinitionsFeed = {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await polling;
      feeds.delete(context);
    },
  };
  feeds.set(context, feed);
  return feed;
}
