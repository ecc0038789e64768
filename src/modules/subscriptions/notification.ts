import type { Bundle, BundleEntry, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { BACKPORT, type PayloadContent } from './backport';
import type { RuntimeStatus } from './state';

export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification' | 'query-status' | 'query-event';

/** One event as a notification carries it; `focus` is left out when the owner may not see it. */
export interface NotifiedEvent {
  number: number;
  ts: Date;
  focus?: { type: string; id: string; method: string; resource?: Resource };
}

export interface StatusInput {
  baseUrl: string;
  subscriptionId: string;
  topic: string;
  status: RuntimeStatus;
  type: NotificationType;
  eventsSinceStart: number;
  events?: NotifiedEvent[];
  error?: string;
}

/** The SubscriptionStatus of the R4 backport: a Parameters with the backport-subscription-status-r4 profile. */
export function subscriptionStatus(input: StatusInput): Parameters {
  const parameter: ParametersParameter[] = [
    { name: 'subscription', valueReference: { reference: `${input.baseUrl}/Subscription/${input.subscriptionId}` } },
    { name: 'topic', valueCanonical: input.topic },
    { name: 'status', valueCode: input.status },
    { name: 'type', valueCode: input.type },
    // A string in the R4 profile (R5's integer64 does not exist in R4).
    { name: 'events-since-subscription-start', valueString: String(input.eventsSinceStart) },
  ];
  for (const event of input.events ?? []) {
    parameter.push({
      name: 'notification-event',
      part: [
        { name: 'event-number', valueString: String(event.number) },
        { name: 'timestamp', valueInstant: event.ts.toISOString() },
        ...(event.focus
          ? [{ name: 'focus', valueReference: { reference: `${input.baseUrl}/${event.focus.type}/${event.focus.id}` } }]
          : []),
      ],
    });
  }
  if (input.error) {
    parameter.push({
      name: 'error',
      valueCodeableConcept: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/subscription-error', code: 'no-response' }],
        text: input.error,
      },
    });
  }
  return { resourceType: 'Parameters', id: randomUUID(), meta: { profile: [BACKPORT.statusProfile] }, parameter };
}

/**
 * A notification Bundle as the R4 backport has it: type `history`, the status first (as if read with a
 * GET of $status), then one entry per event focus: its URL (`id-only`) or the resource too
 * (`full-resource`), with the request that wrote it; nothing for `empty`.
 */
export function notificationBundle(input: StatusInput, content: PayloadContent): Bundle {
  const status = subscriptionStatus({
    ...input,
    events: content === 'empty' ? input.events?.map(({ focus: _f, ...e }) => e) : input.events,
  });
  const entry: BundleEntry[] = [
    {
      fullUrl: `urn:uuid:${status.id}`,
      resource: status,
      request: { method: 'GET', url: `${input.baseUrl}/Subscription/${input.subscriptionId}/$status` },
      response: { status: '200' },
    },
  ];
  if (content !== 'empty') {
    for (const event of input.events ?? []) {
      if (!event.focus) continue;
      const { type, id, method, resource } = event.focus;
      entry.push({
        fullUrl: `${input.baseUrl}/${type}/${id}`,
        ...(content === 'full-resource' && resource ? { resource } : {}),
        request: { method: method === 'POST' ? 'POST' : 'PUT', url: method === 'POST' ? type : `${type}/${id}` },
        response: { status: method === 'POST' ? '201' : '200' },
      });
    }
  }
  return {
    resourceType: 'Bundle',
    id: randomUUID(),
    meta: { profile: [BACKPORT.notificationProfile] },
    type: 'history',
    timestamp: new Date().toISOString(),
    entry,
  };
}
