import type { ServerContext } from '../rest/context';
import type { ProcessDocument } from '../store/processes';

/**
 * This server process among the processes sharing the database, as the definition rollout needs it:
 * a view of the store's ProcessRegistry (`store.processes`) and its `drainCommits`.
 */
export interface Membership {
  server: string;
  incarnation: string;
  /** Incarnations whose heartbeat is within the lease, this one included. */
  live(): Promise<string[]>;
  isAlive(owner: { server: string; incarnation: string }): Promise<boolean>;
  /** Resolves once the commits this process had staged or in flight when called have finished. */
  drainCommits(): Promise<void>;
}

export function membershipOf(context: ServerContext): Membership {
  const { store } = context;
  const processes = store.processes;
  return {
    server: processes.serverId,
    incarnation: processes.incarnation,
    live: async () => (await processes.live()).map((p: ProcessDocument) => p._id),
    isAlive: (owner) => processes.isAlive(owner),
    drainCommits: () => store.drainCommits(),
  };
}
