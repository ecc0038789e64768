import type { Bundle, DetectedIssue, MedicationDispense } from '@medplum/fhirtypes';
import pino from 'pino';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { FINDING_KEY_SYSTEM } from '../../src/modules/findings/model';
import { FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { eventually, notificationType, Receiver, type Received } from '../subscriptions/receiver';
import { backportSubscription, expectSigned, subscribeAndWait } from '../subscriptions/support';
import { findingsOn, moveClock, scenario, settled, sync, syncBundle } from './support';

// Standing findings and subscriptions together, as a care team uses them: the day a refill becomes
// late, the server opens the finding by itself and tells the team's receiver; a new fill closes it.
jest.setTimeout(180_000);

const FINDING_TOPIC = 'https://meds-fhir.org/fhir/SubscriptionTopic/finding';
const LATE_KEY = 'late-refill|late-refill|statins';

let server: TestServer;
const receiver = new Receiver();

beforeAll(async () => {
  await receiver.start();
  server = await startTestServer(
    __filename,
    { ...findingsOn(), subscriptions: { ...loadConfig({}).subscriptions, pollMs: 50, retryBaseMs: 50 } },
    { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) },
  );
});
afterAll(async () => {
  await server.close();
  await receiver.stop();
});

const keyOf = (issue: DetectedIssue) => issue.identifier?.find((i) => i.system === FINDING_KEY_SYSTEM)?.value;

/** The late-refill DetectedIssues the receiver was told about, in the order it was told. */
function lateRefillsNotified(received: Received[]): DetectedIssue[] {
  return received
    .filter((r) => notificationType(r) === 'event-notification')
    .flatMap((r) => (r.body as Bundle).entry?.slice(1) ?? [])
    .map((e) => e.resource as DetectedIssue)
    .filter((issue) => issue?.resourceType === 'DetectedIssue' && keyOf(issue) === LATE_KEY);
}

describe('a late refill, found and told the day it happens', () => {
  const bundle = syncBundle(scenario('late-refill'));
  let secret = '';

  it('notifies the finding the day supply plus grace runs out, and not the day before', async () => {
    await moveClock(server.app, '2026-06-10');
    ({ secret } = await subscribeAndWait(
      server.app,
      backportSubscription(receiver.url('/team'), FINDING_TOPIC, 'full-resource', [
        'patient=Patient/late-refill',
        'code=late-refill',
      ]),
    ));
    await sync(server.app, bundle);
    await settled(server.app);
    await moveClock(server.app, '2026-06-22');
    await settled(server.app);
    expect(lateRefillsNotified(receiver.on('/team'))).toEqual([]);

    await moveClock(server.app, '2026-06-23');
    const [opened] = await eventually(() => {
      const told = lateRefillsNotified(receiver.on('/team'));
      return told.length ? told : undefined;
    }, 120_000);
    expect(opened).toMatchObject({ status: 'preliminary', identifiedDateTime: '2026-06-23' });
    const notification = receiver
      .on('/team')
      .find((r) => lateRefillsNotified([r]).length && notificationType(r) === 'event-notification') as Received;
    expectSigned(notification, secret);
  });

  it('notifies the finding closed when a new fill arrives', async () => {
    const fill: MedicationDispense = {
      ...(bundle.entry?.find((e) => e.resource?.id === 'late-refill-statin-11')?.resource as MedicationDispense),
      id: 'late-refill-statin-12',
      whenHandedOver: '2026-06-23',
    };
    await request(server.app)
      .put('/fhir/MedicationDispense/late-refill-statin-12')
      .set('Content-Type', FHIR_JSON)
      .send(fill)
      .expect(201);
    // @medplum/fhirtypes types DetectedIssue.status with R5's codes; R4's `cancelled` needs the cast.
    const closed = await eventually(
      () => lateRefillsNotified(receiver.on('/team')).find((issue) => (issue.status as string) === 'cancelled'),
      120_000,
    );
    expect(closed.id).toBe(lateRefillsNotified(receiver.on('/team'))[0].id);
  });
});
