import type { Resource } from '@medplum/fhirtypes';
import type { AccessPolicy } from '../../auth/access-policy';
import type { ServerContext } from '../../rest/context';
import { HISTORY_COLLECTION, historyId, type CurrentDocument, type HistoryDocument } from '../../store/documents';
import type { EventRecord } from './state';

type EventKey = Pick<EventRecord, 'type' | 'id' | 'v'>;

/**
 * The foci of events as `policy`'s requester may see them now, by event (absent: not visible). The
 * version an event is about and the resource's current version must both pass the filter a read of
 * theirs would apply (scopes, compartments, sensitivity labels and Consents: AccessPolicy.sees). A
 * resource labelled since, or a patient who left the owner's care team, stops reaching them; nothing
 * of it is sent, not even its id. Two reads per batch: the versions, and the current documents.
 */
export async function visibleFoci(
  context: ServerContext,
  policy: AccessPolicy,
  events: EventKey[],
): Promise<Map<EventKey, Resource>> {
  const visible = new Map<EventKey, Resource>();
  if (!events.length) return visible;
  const { db } = context.store;
  // Outbox events name committed versions only (they are written with their commit's decision).
  const versions = await db
    .collection<HistoryDocument>(HISTORY_COLLECTION)
    .find({ _id: { $in: events.map((e) => historyId(e.type, e.id, e.v)) } })
    .toArray();
  const byVersion = new Map(versions.map((v) => [v._id, v]));
  const current = new Map<string, CurrentDocument>();
  for (const type of new Set(events.map((e) => e.type))) {
    const ids = [...new Set(events.filter((e) => e.type === type).map((e) => e.id))];
    for (const doc of await db
      .collection<CurrentDocument>(type)
      .find({ _id: { $in: ids } })
      .toArray()) {
      current.set(`${type}/${doc._id}`, doc);
    }
  }
  for (const event of events) {
    const version = byVersion.get(historyId(event.type, event.id, event.v));
    const now = current.get(`${event.type}/${event.id}`);
    if (!version?.resource || !now || now.deleted) continue;
    const asVersion: CurrentDocument = { ...now, v: version.v, ts: version.ts, resource: version.resource };
    if (policy.sees(event.type, now) && policy.sees(event.type, asVersion)) visible.set(event, version.resource);
  }
  return visible;
}
