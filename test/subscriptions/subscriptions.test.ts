import type { Bundle, Extension, Resource, Subscription } from '@medplum/fhirtypes';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import request from 'supertest';
import { createServerContext } from '../../src/app-context';
import { loadConfig, type ServerConfig } from '../../src/config';
import { createApp } from '../../src/http/app';
import { PART2_LABEL } from '../auth/fixtures';
import { createResource, expectOutcome, FHIR_JSON, startTestServer, type TestServer } from '../support/server';
import { tokenFor, withAdminToken } from '../support/tokens';
import { eventually, notificationType, parameter, Receiver, statusOf, type Received } from './receiver';
import { B, backportSubscription, expectSigned, subscribeAndWait } from './support';

const TOPICS = 'https://meds-fhir.org/fhir/SubscriptionTopic';
const CHECKS = 'https://meds-fhir.org/fhir/CodeSystem/medication-checks';

const subscriptionConfig = {
  ...loadConfig({}).subscriptions,
  maxAttempts: 3,
  retryBaseMs: 50,
  retryMaxMs: 300,
  pollMs: 50,
};

let server: TestServer;
const receiver = new Receiver();

beforeAll(async () => {
  await receiver.start();
  server = await startTestServer(__filename, { subscriptions: subscriptionConfig });
});
afterAll(async () => {
  await server.close();
  await receiver.stop();
});

const subscription = (path: string, topic: string, content: string, filters: string[] = [], heartbeat?: number) =>
  backportSubscription(receiver.url(path), topic, content, filters, heartbeat);
const subscribe = (sub: Subscription, authorization?: string) => subscribeAndWait(server.app, sub, authorization);

function eventsOf(received: Received[]): Received[] {
  return received.filter((r) => notificationType(r) === 'event-notification');
}

function dispense(patient: string, extra: Partial<Resource> = {}): Resource {
  return {
    resourceType: 'MedicationDispense',
    status: 'completed',
    medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '617312' }] },
    subject: { reference: `Patient/${patient}` },
    whenHandedOver: '2026-11-01',
    ...extra,
  } as Resource;
}

describe('subscriptions', () => {
  it('list the topics in the CapabilityStatement', async () => {
    const response = await request(server.app).get('/fhir/metadata');
    const entry = response.body.rest[0].resource.find((r: { type: string }) => r.type === 'Subscription');
    const topics = (entry.extension as Extension[])
      .filter((e) => e.url === `${B}/capabilitystatement-subscriptiontopic-canonical`)
      .map((e) => e.valueCanonical);
    expect(topics).toEqual(
      expect.arrayContaining([`${TOPICS}/finding`, `${TOPICS}/MedicationDispense`, `${TOPICS}/MedicationRequest`]),
    );
    expect(entry.supportedProfile).toContain(`${B}/backport-subscription`);
    expect(entry.operation.map((o: { name: string }) => o.name)).toEqual(expect.arrayContaining(['status', 'events']));
  });

  it('refuse endpoints on hosts that are not allowed, other channels and unknown topics or filters (422)', async () => {
    const post = (body: object) =>
      request(server.app).post('/fhir/Subscription').set('Content-Type', FHIR_JSON).send(body);
    const offHost = subscription('/x', `${TOPICS}/MedicationDispense`, 'id-only');
    offHost.channel.endpoint = 'https://internal.example.org/hook';
    expectOutcome(await post(offHost), 422, { expression: 'Subscription.channel.endpoint' });
    const websocket = { ...subscription('/x', `${TOPICS}/MedicationDispense`, 'id-only') };
    websocket.channel = { ...websocket.channel, type: 'websocket' };
    expectOutcome(await post(websocket), 422, { expression: 'Subscription.channel.type' });
    expectOutcome(await post(subscription('/x', `${TOPICS}/Nothing`, 'id-only')), 422, {
      expression: 'Subscription.criteria',
    });
    expectOutcome(await post(subscription('/x', `${TOPICS}/finding`, 'id-only', ['colour=blue'])), 422, {
      expression: 'Subscription.criteria.extension[0]',
    });
    expectOutcome(await post(subscription('/x', `${TOPICS}/MedicationDispense`, 'everything')), 422, {
      expression: 'Subscription.channel.payload',
    });
    const search = await request(server.app).get('/fhir/Subscription');
    expect(search.body.total ?? search.body.entry?.length ?? 0).toBe(0);
  });

  it('handshake on activation, and never return the secret on read', async () => {
    const { id, secret } = await subscribe(subscription('/handshake', `${TOPICS}/MedicationDispense`, 'id-only'));
    const [handshake] = receiver.on('/handshake');
    expect(notificationType(handshake)).toBe('handshake');
    expect(handshake.body.type).toBe('history');
    expect(parameter(statusOf(handshake.body), 'status')?.valueCode).toBe('requested');
    expectSigned(handshake, secret);
    const read = await request(server.app).get(`/fhir/Subscription/${id}`);
    expect(JSON.stringify(read.body)).not.toContain(secret);
    expect(read.body.status).toBe('active');
  });

  it('notify a MedicationDispense create with id-only and full-resource payloads, numbered and signed', async () => {
    const idOnly = await subscribe(
      subscription('/id-only', `${TOPICS}/MedicationDispense`, 'id-only', ['patient=Patient/sub-p1']),
    );
    const full = await subscribe(
      subscription('/full', `${TOPICS}/MedicationDispense`, 'full-resource', [
        'MedicationDispense?patient=Patient/sub-p1',
      ]),
    );
    await createResource(server.app, {
      resourceType: 'Patient',
      id: undefined,
      name: [{ family: 'Other' }],
    } as Resource);
    await createResource(server.app, dispense('sub-other'));
    const created = await createResource(server.app, dispense('sub-p1'));

    const [a] = await eventually(
      () => eventsOf(receiver.on('/id-only')).length > 0 && eventsOf(receiver.on('/id-only')),
    );
    const [b] = await eventually(() => eventsOf(receiver.on('/full')).length > 0 && eventsOf(receiver.on('/full')));
    for (const [received, secret] of [
      [a, idOnly.secret],
      [b, full.secret],
    ] as const) {
      expect(received.body.type).toBe('history');
      const status = statusOf(received.body);
      expect(status.meta?.profile).toContain(`${B}/backport-subscription-status-r4`);
      expect(parameter(status, 'events-since-subscription-start')?.valueString).toBe('1');
      const event = parameter(status, 'notification-event');
      expect(event?.part?.find((p) => p.name === 'event-number')?.valueString).toBe('1');
      expect(event?.part?.find((p) => p.name === 'focus')?.valueReference?.reference).toBe(
        `http://meds-fhir.test/fhir/MedicationDispense/${created.id}`,
      );
      expect(received.body.entry?.[1]?.fullUrl).toBe(`http://meds-fhir.test/fhir/MedicationDispense/${created.id}`);
      expect(received.body.entry?.[1]?.request).toEqual({ method: 'POST', url: 'MedicationDispense' });
      expectSigned(received, secret);
    }
    expect(a.body.entry?.[1]?.resource).toBeUndefined();
    expect(b.body.entry?.[1]?.resource).toMatchObject({ resourceType: 'MedicationDispense', id: created.id });
    // The other patient's fill matched no filter.
    expect(eventsOf(receiver.on('/id-only'))).toHaveLength(1);

    // $status and $events
    const status = await request(server.app).get(`/fhir/Subscription/${full.id}/$status`);
    expect(status.status).toBe(200);
    expect(status.body.type).toBe('searchset');
    const parameters = status.body.entry[0].resource;
    expect(parameter(parameters, 'status')?.valueCode).toBe('active');
    expect(parameter(parameters, 'type')?.valueCode).toBe('query-status');
    expect(parameter(parameters, 'events-since-subscription-start')?.valueString).toBe('1');

    await createResource(server.app, dispense('sub-p1', { whenHandedOver: '2026-11-15' }));
    await eventually(() => eventsOf(receiver.on('/full')).length >= 2);
    const second = eventsOf(receiver.on('/full'))[1];
    expect(parameter(statusOf(second.body), 'notification-event')?.part?.[0]?.valueString).toBe('2');

    const replay = await request(server.app).get(
      `/fhir/Subscription/${full.id}/$events?eventsSinceNumber=1&eventsUntilNumber=1`,
    );
    expect(replay.status).toBe(200);
    expect(replay.body.type).toBe('history');
    const replayStatus = statusOf(replay.body as Bundle);
    expect(parameter(replayStatus, 'type')?.valueCode).toBe('query-event');
    const replayed = replayStatus.parameter?.filter((p) => p.name === 'notification-event') ?? [];
    expect(replayed.map((p) => p.part?.[0]?.valueString)).toEqual(['1']);
    expect(replay.body.entry[1].resource).toMatchObject({ id: created.id });
    const all = await request(server.app).get(`/fhir/Subscription/${full.id}/$events?content=id-only`);
    expect(statusOf(all.body).parameter?.filter((p) => p.name === 'notification-event')).toHaveLength(2);
    expect(all.body.entry[1].resource).toBeUndefined();
    expectOutcome(await request(server.app).get(`/fhir/Subscription/${full.id}/$events?eventsSinceNumber=x`), 400, {
      expression: 'eventsSinceNumber',
    });
  });

  it('retry a failing receiver, put the subscription in error, and resume when it answers', async () => {
    const flaky = new Receiver();
    await flaky.start();
    try {
      const sub = subscription('/flaky', `${TOPICS}/MedicationRequest`, 'id-only', ['patient=Patient/sub-flaky']);
      sub.channel.endpoint = flaky.url('/flaky');
      const { id } = await subscribe(sub);
      flaky.status = 503;
      const prescription = await createResource(server.app, {
        resourceType: 'MedicationRequest',
        status: 'active',
        intent: 'order',
        medicationCodeableConcept: { text: 'x' },
        subject: { reference: 'Patient/sub-flaky' },
      } as Resource);
      await eventually(async () => (await request(server.app).get(`/fhir/Subscription/${id}`)).body.status === 'error');
      expect(eventsOf(flaky.on('/flaky')).length).toBeGreaterThanOrEqual(subscriptionConfig.maxAttempts);
      const read = await request(server.app).get(`/fhir/Subscription/${id}`);
      expect(read.body.error).toMatch(/503/);
      const status = await request(server.app).get(`/fhir/Subscription/${id}/$status`);
      expect(parameter(status.body.entry[0].resource, 'status')?.valueCode).toBe('error');

      const before = flaky.received.length;
      flaky.status = 200;
      await eventually(
        async () => (await request(server.app).get(`/fhir/Subscription/${id}`)).body.status === 'active',
      );
      const delivered = flaky.received.slice(before).filter((r) => notificationType(r) === 'event-notification');
      const focus = delivered.flatMap((r) => r.body.entry?.slice(1).map((e) => e.fullUrl) ?? []);
      expect(focus).toContain(`http://meds-fhir.test/fhir/MedicationRequest/${prescription.id}`);
    } finally {
      await flaky.stop();
    }
  });

  it('never send Part 2 content or ids to a subscriber not cleared for it', async () => {
    const watcher = `Bearer ${await tokenFor({ sub: 'watcher', scope: 'system/*.rs system/Subscription.cruds' })}`;
    const { secret } = await subscribe(
      subscription('/uncleared', `${TOPICS}/MedicationDispense`, 'full-resource', ['patient=Patient/sub-p2']),
      watcher,
    );
    const labelled = await createResource(
      server.app,
      dispense('sub-p2', { meta: { security: [PART2_LABEL] }, note: [{ text: 'program fill' }] }),
    );
    const plain = await createResource(server.app, dispense('sub-p2'));
    const received = await eventually(() => {
      const events = eventsOf(receiver.on('/uncleared'));
      const focus = events.flatMap((r) => r.body.entry?.slice(1) ?? []);
      return focus.some((e) => e.fullUrl?.endsWith(plain.id as string)) && events;
    });
    const raw = received.map((r) => r.raw).join('\n');
    expect(raw).not.toContain(labelled.id as string);
    expect(raw).not.toContain('program fill');
    expect(raw).not.toContain('42CFRPart2');
    // The labelled fill still counts: two events numbered, one focus sent.
    const numbers = received.flatMap(
      (r) =>
        statusOf(r.body)
          .parameter?.filter((p) => p.name === 'notification-event')
          .map((p) => p.part?.[0]?.valueString) ?? [],
    );
    expect(numbers).toEqual(['1', '2']);
    for (const r of received) expectSigned(r, secret);
  });

  it('notify findings with the code and patient filters', async () => {
    await subscribe(
      subscription('/findings', `${TOPICS}/finding`, 'full-resource', [
        'patient=Patient/sub-f1',
        'code=opioid-benzodiazepine',
      ]),
    );
    const finding = (code: string, patient: string): Resource =>
      ({
        resourceType: 'DetectedIssue',
        status: 'preliminary',
        code: { coding: [{ system: CHECKS, code }] },
        patient: { reference: `Patient/${patient}` },
        detail: `finding ${code} for ${patient}`,
      }) as Resource;
    await createResource(server.app, finding('late-refill', 'sub-f1'));
    await createResource(server.app, finding('opioid-benzodiazepine', 'sub-f2'));
    await createResource(server.app, {
      resourceType: 'DetectedIssue',
      status: 'final',
      patient: { reference: 'Patient/sub-f1' },
    } as Resource);
    const wanted = await createResource(server.app, finding('opioid-benzodiazepine', 'sub-f1'));
    const [event] = await eventually(
      () => eventsOf(receiver.on('/findings')).length > 0 && eventsOf(receiver.on('/findings')),
    );
    expect(event.body.entry?.[1]?.resource).toMatchObject({ id: wanted.id, resourceType: 'DetectedIssue' });
    const changed = await request(server.app)
      .put(`/fhir/DetectedIssue/${wanted.id}`)
      .set('Content-Type', FHIR_JSON)
      .send({ ...wanted, status: 'final' });
    expect(changed.status).toBe(200);
    await eventually(() => eventsOf(receiver.on('/findings')).length >= 2);
    const all = eventsOf(receiver.on('/findings'));
    expect(all).toHaveLength(2);
    expect(all[1].body.entry?.[1]?.request).toEqual({ method: 'PUT', url: `DetectedIssue/${wanted.id}` });
  });
});

describe('subscription filters and heartbeats', () => {
  it('match findings of the patients whose care team has a member, with a status filter', async () => {
    await createResource(server.app, {
      resourceType: 'CareTeam',
      status: 'active',
      subject: { reference: 'Patient/sub-ct1' },
      participant: [{ member: { reference: 'Practitioner/sub-nurse' } }],
    } as Resource);
    await subscribe(
      subscription('/care-team', `${TOPICS}/finding`, 'id-only', [
        'care-team=Practitioner/sub-nurse',
        'status=requested',
      ]),
    );
    const task = (patient: string, status: string): Resource =>
      ({
        resourceType: 'Task',
        status,
        intent: 'order',
        code: { coding: [{ system: CHECKS, code: 'missed-follow-up' }] },
        for: { reference: `Patient/${patient}` },
      }) as Resource;
    await createResource(server.app, task('sub-ct2', 'requested'));
    await createResource(server.app, task('sub-ct1', 'completed'));
    const wanted = await createResource(server.app, task('sub-ct1', 'requested'));
    const [event] = await eventually(
      () => eventsOf(receiver.on('/care-team')).length > 0 && eventsOf(receiver.on('/care-team')),
    );
    expect(event.body.entry?.slice(1).map((e) => e.fullUrl)).toEqual([`http://meds-fhir.test/fhir/Task/${wanted.id}`]);
  });

  it('send heartbeats while nothing else is sent', async () => {
    const { secret } = await subscribe(subscription('/heartbeat', `${TOPICS}/Appointment`, 'empty', [], 1));
    const heartbeat = await eventually(() =>
      receiver.on('/heartbeat').find((r) => notificationType(r) === 'heartbeat'),
    );
    expect(heartbeat.body.entry).toHaveLength(1);
    expect(parameter(statusOf(heartbeat.body), 'status')?.valueCode).toBe('active');
    expectSigned(heartbeat, secret);
  });
});

describe('subscription outbox across a restart', () => {
  it('deliver after a restart what was written while no worker ran', async () => {
    const config: ServerConfig = {
      ...loadConfig({}),
      databaseName: `${server.running.context.config.databaseName}_restart`,
      publicBaseUrl: 'http://meds-fhir.test/fhir',
      auth: server.running.context.config.auth,
      subscriptions: { ...subscriptionConfig, delivery: false },
    };
    const uri = process.env.MONGODB_URI as string;
    const logger = pino({ level: 'silent' });
    const client = await MongoClient.connect(uri);
    await client.db(config.databaseName).dropDatabase();
    await client.close();
    let running = await createServerContext(config, uri, logger);
    try {
      const app = withAdminToken(createApp(running.context));
      const sub = subscription('/restart', `${TOPICS}/MedicationDispense`, 'id-only');
      const created = await request(app).post('/fhir/Subscription').set('Content-Type', FHIR_JSON).send(sub);
      expect(created.status).toBe(201);
      const fill = await createResource(app, dispense('sub-restart'));
      await running.close();
      // Nothing was sent: no worker ran in that process.
      expect(receiver.on('/restart')).toHaveLength(0);

      running = await createServerContext({ ...config, subscriptions: subscriptionConfig }, uri, logger);
      const again = withAdminToken(createApp(running.context));
      await eventually(
        async () => (await request(again).get(`/fhir/Subscription/${created.body.id}`)).body.status === 'active',
      );
      // The fill was committed before the subscription was active: it is not an event of it. A fill
      // written now, with delivery stopped again before it runs, must survive the next restart.
      await running.close();
      running = await createServerContext(config, uri, logger);
      const stopped = withAdminToken(createApp(running.context));
      const later = await createResource(stopped, dispense('sub-restart', { whenHandedOver: '2026-11-20' }));
      await running.close();
      running = await createServerContext({ ...config, subscriptions: subscriptionConfig }, uri, logger);
      const [event] = await eventually(
        () => eventsOf(receiver.on('/restart')).length > 0 && eventsOf(receiver.on('/restart')),
      );
      const focus = event.body.entry?.slice(1).map((e) => e.fullUrl);
      expect(focus).toEqual([`http://meds-fhir.test/fhir/MedicationDispense/${later.id}`]);
      expect(focus).not.toContain(`http://meds-fhir.test/fhir/MedicationDispense/${fill.id}`);
    } finally {
      await running.connection.db.dropDatabase();
      await running.close();
    }
  });
});
