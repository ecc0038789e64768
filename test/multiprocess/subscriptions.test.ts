import type { Resource } from '@medplum/fhirtypes';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { FHIR_JSON } from '../support/server';
import { eventually, notificationType, Receiver } from '../subscriptions/receiver';
import { startCluster, type ClusterMember } from './cluster';

// Two server processes (contexts) on one database, both running delivery workers.
const B = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const receiver = new Receiver();
let members: ClusterMember[];
let close: () => Promise<void>;

beforeAll(async () => {
  await receiver.start();
  const cluster = await startCluster(__filename, 2, {
    subscriptions: { ...loadConfig({}).subscriptions, pollMs: 50, retryBaseMs: 50, retryMaxMs: 300 },
  });
  members = cluster.members;
  close = cluster.close;
});
afterAll(async () => {
  await close();
  await receiver.stop();
});

describe('subscriptions across server processes', () => {
  it('number every event once and deliver each, whichever process wrote it', async () => {
    const [a, b] = members;
    const created = await request(a.app)
      .post('/fhir/Subscription')
      .set('Content-Type', FHIR_JSON)
      .send({
        resourceType: 'Subscription',
        status: 'requested',
        reason: 'cluster',
        criteria: 'https://meds-fhir.org/fhir/SubscriptionTopic/MedicationDispense',
        channel: {
          type: 'rest-hook',
          endpoint: receiver.url('/cluster'),
          payload: 'application/fhir+json',
          _payload: { extension: [{ url: `${B}/backport-payload-content`, valueCode: 'id-only' }] },
        },
      });
    expect(created.status).toBe(201);
    // Active only once both processes hold it: from then on both write its events.
    await eventually(
      async () => (await request(b.app).get(`/fhir/Subscription/${created.body.id}`)).body.status === 'active',
    );
    const written: string[] = [];
    for (let i = 0; i < 12; i++) {
      const member = members[i % 2];
      const response = await request(member.app)
        .post('/fhir/MedicationDispense')
        .set('Content-Type', FHIR_JSON)
        .send({
          resourceType: 'MedicationDispense',
          status: 'completed',
          medicationCodeableConcept: { text: `fill ${i}` },
          subject: { reference: 'Patient/cluster-p' },
        } as Resource);
      expect(response.status).toBe(201);
      written.push(`http://meds-fhir.test/fhir/MedicationDispense/${response.body.id}`);
    }
    const byNumber = new Map<string, string>();
    await eventually(() => {
      for (const r of receiver.on('/cluster').filter((n) => notificationType(n) === 'event-notification')) {
        const status = r.body.entry?.[0]?.resource as {
          parameter?: {
            name: string;
            part?: { name: string; valueString?: string; valueReference?: { reference?: string } }[];
          }[];
        };
        for (const event of status.parameter?.filter((p) => p.name === 'notification-event') ?? []) {
          const number = event.part?.find((p) => p.name === 'event-number')?.valueString as string;
          const focus = event.part?.find((p) => p.name === 'focus')?.valueReference?.reference as string;
          // At least once: a number delivered again names the same event.
          if (byNumber.has(number)) expect(byNumber.get(number)).toBe(focus);
          byNumber.set(number, focus);
        }
      }
      return byNumber.size >= written.length;
    });
    expect([...byNumber.values()].sort()).toEqual([...written].sort());
    expect([...byNumber.keys()].map(Number).sort((x, y) => x - y)).toEqual(written.map((_, i) => i + 1));
  });
});
