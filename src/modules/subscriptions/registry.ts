import type { Subscription } from '@medplum/fhirtypes';
import type { ServerContext } from '../../rest/context';
import type { DefinitionChange } from '../definitions-feed';
import { readSubscription, type SubscriptionSpec } from './spec';
import type { SubscriptionCollections, SubscriptionState } from './state';

/**
 * The Subscriptions of the database as this process knows them, parsed once per version. Versions
 * reach it through the definitions feed (a commit of this process at once, another's within about a
 * second); `current` catches up from the store when the shared state names a newer version than the
 * feed has brought yet, so a fan-out never works from a stale definition.
 */
export class SubscriptionRegistry {
  private readonly specs = new Map<string, { v: number; spec?: SubscriptionSpec }>();

  constructor(
    private readonly context: ServerContext,
    private readonly collections: SubscriptionCollections,
  ) {}

  get size(): number {
    return this.specs.size;
  }

  async apply(change: DefinitionChange): Promise<void> {
    const known = this.specs.get(change.id);
    if (known && known.v >= change.v) return;
    const spec = change.resource ? this.parse(change.resource as Subscription) : undefined;
    await this.remember(change.id, { v: change.v, spec }, !known && change.resource !== undefined);
  }

  async current(state: SubscriptionState): Promise<SubscriptionSpec | undefined> {
    const known = this.specs.get(state._id);
    if (known && known.v >= state.v) return known.spec;
    const doc = await this.context.store.read('Subscription', state._id);
    if (!doc) return undefined;
    const entry = { v: doc.v, spec: doc.deleted ? undefined : this.parse(doc.resource as Subscription) };
    await this.remember(state._id, entry, !known && !doc.deleted);
    return entry.spec;
  }

  private async remember(id: string, entry: { v: number; spec?: SubscriptionSpec }, first: boolean): Promise<void> {
    this.specs.set(id, entry);
    // From now on this process's commits write the subscription's events (commitDocuments' gate).
    if (first) await this.collections.markSeen(id, this.context.store.processes.incarnation);
  }

  private parse(subscription: Subscription): SubscriptionSpec | undefined {
    // Refused writes never get here; a stored one that no longer reads (its host was taken off the
    // list) has no spec, and nothing is sent to it.
    return readSubscription(subscription, this.context.config).spec;
  }
}
