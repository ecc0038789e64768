import type { Db } from 'mongodb';
import { randomUUID } from 'node:crypto';

/**
 * The server processes sharing one database, each with a heartbeat. A commit records the process that
 * makes it; recovery takes over a commit only when its process is gone: a previous run of the same
 * server (same SERVER_ID, so a restart recovers its own unfinished commits at once) or a process whose
 * heartbeat is older than the lease. Age alone never decides, so a slow commit of a live process is
 * never undone.
 */
export const PROCESSES_COLLECTION = '_processes';

export interface ProcessDocument {
  /** The incarnation: new at every start of a process. */
  _id: string;
  /** SERVER_ID: stable across restarts of one server. */
  server: string;
  startedAt: Date;
  heartbeatAt: Date;
}

export interface ProcessRegistryOptions {
  serverId: string;
  /** A process whose heartbeat is older than this is taken for dead. */
  leaseMs: number;
  /** Heartbeat failures (the database unreachable) are reported, not thrown. */
  onError?: (error: unknown) => void;
}

export class ProcessRegistry {
  readonly incarnation = randomUUID();
  readonly serverId: string;
  private readonly leaseMs: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly db: Db,
    private readonly options: ProcessRegistryOptions,
  ) {
    this.serverId = options.serverId;
    this.leaseMs = options.leaseMs;
  }

  private get collection() {
    return this.db.collection<ProcessDocument>(PROCESSES_COLLECTION);
  }

  /** Registers this process and starts its heartbeat (a few beats per lease, so one late beat is harmless). */
  async start(): Promise<void> {
    const now = new Date();
    await this.collection.insertOne({ _id: this.incarnation, server: this.serverId, startedAt: now, heartbeatAt: now });
    const every = Math.max(50, Math.floor(this.leaseMs / 4));
    this.timer = setInterval(() => {
      this.collection
        .updateOne({ _id: this.incarnation }, { $set: { heartbeatAt: new Date() } })
        .catch((error: unknown) => this.options.onError?.(error));
    }, every);
    this.timer.unref();
  }

  /** Whether the process that made a commit may still be making it. */
  async isAlive(owner: { server: string; incarnation: string }): Promise<boolean> {
    if (owner.incarnation === this.incarnation) return true;
    // An earlier run of this very server is over: the restart is what makes its commits recoverable.
    if (owner.server === this.serverId) return false;
    const doc = await this.collection.findOne({ _id: owner.incarnation });
    return doc !== null && doc.heartbeatAt.getTime() >= Date.now() - this.leaseMs;
  }

  /** Processes whose heartbeat is within the lease, this one included. */
  async live(): Promise<ProcessDocument[]> {
    const docs = await this.collection.find({}).toArray();
    const cutoff = Date.now() - this.leaseMs;
    return docs.filter((d) => d._id === this.incarnation || d.heartbeatAt.getTime() >= cutoff);
  }

  /** Removes the records of processes dead for more than ten leases (they have nothing left to recover). */
  async forgetDead(): Promise<void> {
    await this.collection.deleteMany({ heartbeatAt: { $lt: new Date(Date.now() - 10 * this.leaseMs) } });
  }

  /** Stops the heartbeat and unregisters: called once this process has no commit in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.collection.deleteOne({ _id: this.incarnation }).catch(() => undefined);
  }
}
