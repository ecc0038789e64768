import type { Resource } from '@medplum/fhirtypes';
import type { AccessPolicy } from '../../auth/access-policy';
import type { ServerContext } from '../../rest/context';
import type { CurrentDocument } from '../../store/documents';
import type { EventRecord } from './state';

/**
 * The focus of an event as `policy`'s requester may see it now, or undefined: the version the event
 * is about and the resource's current version must both pass the filter a read of theirs would apply
 * (scopes, compartments, sensitivity labels and Consents: AccessPolicy.sees). A resource labelled
 * since, or a patient who left the owner's care team, stops reaching them; nothing of it is sent,
 * not even its id.
 */
export async function visibleFocus(
  context: ServerContext,
  policy: AccessPolicy,
  event: Pick<EventRecord, 'type' | 'id' | 'v'>,
): Promise<Resource | undefined> {
  const [version, current] = await Promise.all([
    context.store.vread(event.type, event.id, event.v),
    context.store.read(event.type, event.id),
  ]);
  if (!version?.resource || !current || current.deleted) return undefined;
  const asVersion: CurrentDocument = { ...current, v: version.v, ts: version.ts, resource: version.resource };
  if (!policy.sees(event.type, current) || !policy.sees(event.type, asVersion)) return undefined;
  return version.resource;
}
