import { randomUUID } from 'node:crypto';
import type { ServerContext } from '../rest/context';
import type { ProcessDocument, ProcessRegistry } from '../store/processes';

/**
 * This server process among the processes sharing the database, as the definition rollout needs it.
 * It comes from the store's ProcessRegistry (`store.processes`) and its `drainCommits`; a store without
 * them (an older wiring, some unit tests) is taken for the only process, with nothing to drain.
 */
export interface Membership {
  server: string;
  incarnation: string;
  /** Incarnations whose heartbeat is within the lease (earlier runs of this server excluded), this one included. */
  live(): Promise<string[]>;
  isAlive(owner: { server: string; incarnation: string }): Promise<boolean>;
  /** Resolves once the commits this process had in flight when called have finished. */
  drainCommits(): Promise<void>;
}

interface ClusterStore {
  processes?: Pick<ProcessRegistry, 'incarnation' | 'serverId' | 'live' | 'isAlive'>;
  drainCommits?: () => Promise<void>;
}

/** Per context: two contexts in one test process are two processes to the database. */
const solos = new WeakMap<ServerContext, { server: string; incarnation: string }>();

/** Read at each use: the registry may be attached to the store after the modules registered. */
export function membershipOf(context: ServerContext): Membership {
  const store: ClusterStore = context.store;
  const processes = store.processes;
  if (!processes) {
    let solo = solos.get(context);
    if (!solo) solos.set(context, (solo = { server: `solo-${randomUUID()}`, incarnation: randomUUID() }));
    const me = solo;
    return {
      ...me,
      live: async () => [me.incarnation],
      isAlive: async (owner) => owner.incarnation === me.incarnation,
      drainCommits: async () => undefined,
    };
  }
  return {
    server: processes.serverId,
    incarnation: processes.incarnation,
    // An earlier run of this very server (same SERVER_ID) is over, however fresh its last heartbeat.
    live: async () =>
      (await processes.live())
        .filter((p: ProcessDocument) => p.server !== processes.serverId || p._id === processes.incarnation)
        .map((p) => p._id),
    isAlive: (owner) => processes.isAlive(owner),
    drainCommits: () => store.drainCommits?.() ?? Promise.resolve(),
  };
}
