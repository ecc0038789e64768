import type { Resource } from '@medplum/fhirtypes';
import type { ServerContext } from '../rest/context';
import { sameContent } from '../rest/write';
import { VersionConflictError } from '../store/journal';
import type { PlannedWrite } from '../store/resource-store';

/**
 * Stores resources shipped in the repository (profiles, value sets, checks) so that they are read and
 * searched like any other resource. The repository's files are the source of truth for their ids:
 * a changed file becomes a new version at the next start; an unchanged one writes nothing, so
 * restarts add no history.
 */
export async function publishShipped(context: ServerContext, resources: Resource[]): Promise<number> {
  const writes: PlannedWrite[] = [];
  for (const resource of resources) {
    if (!resource.id) continue;
    const previous = await context.store.read(resource.resourceType, resource.id);
    if (previous && !previous.deleted && sameContent(previous.resource, resource)) continue;
    writes.push({ type: resource.resourceType, id: resource.id, method: 'PUT', previous, resource });
  }
  if (!writes.length) return 0;
  try {
    const docs = await context.store.commit(writes);
    const committed = docs.map((doc, i) => ({ type: writes[i].type, doc }));
    for (const interceptor of context.interceptors) await interceptor.afterCommit?.(committed);
    return docs.length;
  } catch (error) {
    // Another server starting at the same time published them first.
    if (error instanceof VersionConflictError) return 0;
    throw error;
  }
}
