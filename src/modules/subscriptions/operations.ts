import type { Bundle, BundleEntry, Parameters, Resource } from '@medplum/fhirtypes';
import { policyOf } from '../../auth/access-control';
import { badRequest, gone, notFound } from '../../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../../fhir/request';
import type { OperationHandler, ServerContext } from '../../rest/context';
import { BACKPORT, PAYLOAD_CONTENTS, type PayloadContent } from './backport';
import { notificationBundle, subscriptionStatus, type NotifiedEvent } from './notification';
import type { SubscriptionRegistry } from './registry';
import type { SubscriptionCollections, SubscriptionState } from './state';
import { visibleFoci } from './visibility';

/** Most events one $events answer carries; a client pages with eventsSinceNumber. */
const MAX_EVENTS = 100;

/** An operation's inputs from the query or a Parameters body (name → values). */
function inputsOf(request: FhirRequest): Map<string, string[]> {
  const inputs = new Map<string, string[]>();
  const add = (name: string, value: string) => inputs.set(name, [...(inputs.get(name) ?? []), value]);
  for (const [name, value] of request.query) add(name, value);
  const body = request.body as Parameters | undefined;
  if (body && typeof body === 'object' && body.resourceType === 'Parameters') {
    for (const p of body.parameter ?? []) {
      const value = p.valueString ?? p.valueCode ?? p.valueId;
      if (typeof p.name === 'string' && typeof value === 'string') add(p.name, value);
    }
  }
  return inputs;
}

function numberInput(inputs: Map<string, string[]>, name: string): number | undefined {
  const text = inputs.get(name)?.[0];
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text)) throw badRequest(`${name} must be a non-negative event number, got "${text}"`, name);
  return Number(text);
}

/** The Subscription an instance-level operation names, as its caller may read it (else 404). */
async function visibleSubscription(request: FhirRequest, context: ServerContext, id: string) {
  const doc = await context.store.read('Subscription', id, request.reads);
  if (!doc) throw notFound(`Subscription/${id} is not known`, 'Subscription.id');
  if (doc.deleted) throw gone(`Subscription/${id} has been deleted`, 'Subscription.id');
  return doc;
}

export function subscriptionOperations(
  collections: SubscriptionCollections,
  registry: SubscriptionRegistry,
): OperationHandler[] {
  const stateOf = async (id: string): Promise<SubscriptionState> => {
    const state = await collections.states.findOne({ _id: id });
    if (!state)
      throw notFound(
        `Subscription/${id} has no delivery state (it was not written through this server)`,
        'Subscription.id',
      );
    return state;
  };
  const statusOf = async (request: FhirRequest, context: ServerContext, id: string): Promise<Parameters> => {
    const doc = await visibleSubscription(request, context, id);
    const state = await stateOf(id);
    return subscriptionStatus({
      baseUrl: request.baseUrl,
      subscriptionId: id,
      topic: (doc.resource as { criteria?: string }).criteria ?? '',
      status: state.status,
      type: 'query-status',
      eventsSinceStart: state.count ?? 0,
      ...(state.status === 'error' && state.lastError ? { error: state.lastError } : {}),
    });
  };

  const status: OperationHandler = {
    name: 'status',
    levels: ['instance', 'type'],
    resourceTypes: ['Subscription'],
    affectsState: false,
    requires: { permissions: ['r'], type: 'Subscription' },
    definition: BACKPORT.statusOperation,
    async handle(request, context, target): Promise<FhirResponse> {
      const inputs = inputsOf(request);
      let ids: string[];
      if (target.id) ids = [target.id];
      else {
        ids = inputs.get('id') ?? [];
        if (!ids.length) {
          const wanted = inputs.get('status');
          const docs = await (request.reads ?? context.store.directReader()).find<{ _id: string; resource: Resource }>(
            'Subscription',
            { deleted: { $ne: true }, ...(wanted ? { 'resource.status': { $in: wanted } } : {}) },
            { limit: 1000, projection: { _id: 1 } },
          );
          ids = docs.map((d) => d._id);
        }
      }
      const entry: BundleEntry[] = [];
      for (const id of ids) {
        try {
          const parameters = await statusOf(request, context, id);
          entry.push({ fullUrl: `urn:uuid:${parameters.id}`, resource: parameters, search: { mode: 'match' } });
        } catch (error) {
          if (target.id) throw error;
        }
      }
      const body: Bundle = { resourceType: 'Bundle', type: 'searchset', total: entry.length, entry };
      return { status: 200, headers: {}, body };
    },
  };

  const events: OperationHandler = {
    name: 'events',
    levels: ['instance'],
    resourceTypes: ['Subscription'],
    affectsState: false,
    requires: { permissions: ['r'], type: 'Subscription' },
    definition: BACKPORT.eventsOperation,
    async handle(request, context, target): Promise<FhirResponse> {
      const id = target.id as string;
      const doc = await visibleSubscription(request, context, id);
      const state = await stateOf(id);
      const spec = await registry.current(state);
      const inputs = inputsOf(request);
      const since = numberInput(inputs, 'eventsSinceNumber');
      const until = numberInput(inputs, 'eventsUntilNumber');
      const asked = inputs.get('content')?.[0];
      if (asked !== undefined && !PAYLOAD_CONTENTS.includes(asked as PayloadContent)) {
        throw badRequest(`content must be empty, id-only or full-resource, got "${asked}"`, 'content');
      }
      const content = (asked as PayloadContent | undefined) ?? spec?.content ?? 'id-only';
      const range: Record<string, number> = {};
      if (since !== undefined) range.$gte = since;
      if (until !== undefined) range.$lte = until;
      const records = await collections.events
        .find({ sub: id, ...(Object.keys(range).length ? { number: range } : {}) })
        .sort({ number: 1 })
        .limit(MAX_EVENTS)
        .toArray();
      // The caller's own access decides what of each focus it is shown, as for a read.
      const policy = await policyOf(request, context);
      const foci = content === 'empty' ? new Map() : await visibleFoci(context, policy, records);
      const notified: NotifiedEvent[] = records.map((record) => {
        const resource = foci.get(record);
        return {
          number: record.number,
          ts: record.ts,
          ...(resource ? { focus: { type: record.type, id: record.id, method: record.method, resource } } : {}),
        };
      });
      const body = notificationBundle(
        {
          baseUrl: request.baseUrl,
          subscriptionId: id,
          topic: (doc.resource as { criteria?: string }).criteria ?? '',
          status: state.status,
          type: 'query-event',
          eventsSinceStart: state.count ?? 0,
          events: notified,
        },
        content,
      );
      return { status: 200, headers: {}, body };
    },
  };
  return [status, events];
}
