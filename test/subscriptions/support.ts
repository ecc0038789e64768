import type { Extension, Subscription } from '@medplum/fhirtypes';
import { createHmac } from 'node:crypto';
import type { Express } from 'express';
import request from 'supertest';
import { FHIR_JSON } from '../support/server';
import { eventually, type Received } from './receiver';

export const B = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const SECRET_URL = 'https://meds-fhir.org/fhir/StructureDefinition/subscription-signing-secret';

/** A rest-hook Subscription with the backport profile: filters on `_criteria`, content on `_payload`. */
export function backportSubscription(
  endpoint: string,
  topic: string,
  content: string,
  filters: string[] = [],
  heartbeat?: number,
): Subscription {
  return {
    resourceType: 'Subscription',
    meta: { profile: [`${B}/backport-subscription`] },
    status: 'requested',
    reason: 'test',
    criteria: topic,
    ...(filters.length
      ? { _criteria: { extension: filters.map((f) => ({ url: `${B}/backport-filter-criteria`, valueString: f })) } }
      : {}),
    channel: {
      type: 'rest-hook',
      endpoint,
      payload: 'application/fhir+json',
      ...(heartbeat ? { extension: [{ url: `${B}/backport-heartbeat-period`, valueUnsignedInt: heartbeat }] } : {}),
      _payload: { extension: [{ url: `${B}/backport-payload-content`, valueCode: content }] },
    },
  } as Subscription;
}

/** Creates a Subscription and waits until its handshake made it active; returns its id and secret. */
export async function subscribeAndWait(
  app: Express,
  sub: Subscription,
  authorization?: string,
): Promise<{ id: string; secret: string }> {
  const post = request(app).post('/fhir/Subscription').set('Content-Type', FHIR_JSON);
  if (authorization) post.set('Authorization', authorization);
  const response = await post.send(sub);
  expect(response.status).toBe(201);
  const secret = (response.body.extension as Extension[]).find((e) => e.url === SECRET_URL)?.valueString as string;
  expect(secret).toMatch(/^[0-9a-f]{64}$/);
  const id = response.body.id as string;
  await eventually(async () => (await request(app).get(`/fhir/Subscription/${id}`)).body.status === 'active');
  return { id, secret };
}

/** The notification carries the HMAC-SHA256 of its body with the subscription's secret. */
export function expectSigned(received: Received, secret: string): void {
  const expected = `sha256=${createHmac('sha256', secret).update(received.raw).digest('hex')}`;
  expect(received.headers['x-meds-fhir-signature']).toBe(expected);
}
