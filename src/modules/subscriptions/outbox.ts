import type { Subscription } from '@medplum/fhirtypes';
import { randomBytes } from 'node:crypto';
import type { FhirRequest } from '../../fhir/request';
import type { SideDocument, StagedWrite } from '../../store/journal';
import { storeRequester } from '../../auth/stored-requester';
import { SECRETS_COLLECTION, STATE_COLLECTION, type SubscriptionCollections } from './state';
import { TOPIC_TYPES, topicsOfVersion } from './topics';

/** What the fan-out needs of a committed version that is an event of some topic. */
export interface OutboxFields {
  type: string;
  id: string;
  v: number;
  method: string;
  ts: Date;
  topics: string[];
  compartments: string[];
  sp?: Record<string, unknown>;
}

/**
 * The documents a commit writes for subscriptions, all in the same commit as the versions (the
 * journal's side documents): they exist if and only if the commit happened, even across a crash, and
 * the commit does nothing else for subscriptions (no look-up, no HTTP), so writes are not slowed by them.
 * - each version that is an event of some topic: one outbox entry (fanned out to subscriptions later);
 * - each Subscription written: its state (owner, status) and, when it is created, its signing secret,
 *   plus a delivery entry so a `requested` one gets its handshake.
 * Returns the secrets of the Subscriptions this commit creates, for the create response.
 */
export function commitDocuments(
  collections: SubscriptionCollections,
  request: FhirRequest,
  staged: StagedWrite[],
  secrets: Map<string, string>,
): SideDocument[] {
  const sides: SideDocument[] = [];
  for (const write of staged) {
    const resource = write.next.resource;
    const deleted = write.method === 'DELETE' || write.next.deleted === true || !resource;
    // A deleted Subscription stops: its state says so, and nothing more is fanned out or sent to it.
    if (deleted && write.type === 'Subscription') {
      sides.push({
        collection: STATE_COLLECTION,
        _id: write.id,
        mode: 'upsert',
        fields: { status: 'off', v: write.next.v },
      });
    }
    if (deleted) continue;
    if (write.type === 'Subscription') {
      sides.push(...subscriptionDocuments(collections, request, write, resource as Subscription, secrets));
      continue;
    }
    if (!TOPIC_TYPES.has(write.type)) continue;
    const topics = topicsOfVersion(resource);
    if (!topics.length) continue;
    const fields: OutboxFields = {
      type: write.type,
      id: write.id,
      v: write.next.v,
      method: write.previous && !write.previous.deleted ? 'PUT' : 'POST',
      ts: write.next.ts,
      topics,
      compartments: write.next.compartments ?? [],
      ...(write.next.sp ? { sp: write.next.sp } : {}),
    };
    // Keyed by version: writing it again (recovery finishing the commit) changes nothing.
    sides.push({
      ...collections.outbox.entry(`${write.type}/${write.id}/${write.next.v}`, { ...fields }),
      mode: 'insert-once',
    });
  }
  return sides;
}

function subscriptionDocuments(
  collections: SubscriptionCollections,
  request: FhirRequest,
  write: StagedWrite,
  subscription: Subscription,
  secrets: Map<string, string>,
): SideDocument[] {
  const sides: SideDocument[] = [];
  const creating = !write.previous || write.previous.deleted === true;
  const requested = subscription.status === 'requested';
  const fields: Record<string, unknown> = {
    v: write.next.v,
    // The latest writer: they chose the endpoint and filters, so their access is what notifications get.
    owner: storeRequester(request.requester ?? { unrestricted: false, grants: [], clearance: new Set() }),
    heartbeatMs: heartbeatOf(subscription),
  };
  if (requested || subscription.status === 'off') fields.status = subscription.status;
  if (requested) fields.handshaken = false;
  if (creating) {
    // A new secret per creation (a Subscription deleted and created again gets a new one).
    const secret = randomBytes(32).toString('hex');
    const ref = `${write.id}/${write.next.v}`;
    secrets.set(write.id, secret);
    sides.push({ collection: SECRETS_COLLECTION, _id: ref, mode: 'insert-once', fields: { secret } });
    fields.secretRef = ref;
    fields.count = 0;
    fields.status ??= 'requested';
  }
  sides.push({ collection: STATE_COLLECTION, _id: write.id, mode: 'upsert', fields });
  if (requested) sides.push(collections.delivery.entry(write.id));
  return sides;
}

function heartbeatOf(subscription: Subscription): number | null {
  const ext = (subscription.channel?.extension ?? []).find(
    (e) => e?.url === 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period',
  );
  return typeof ext?.valueUnsignedInt === 'number' && ext.valueUnsignedInt > 0 ? ext.valueUnsignedInt * 1000 : null;
}
