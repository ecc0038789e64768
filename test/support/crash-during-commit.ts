// Run as a child process by test/store/journal.test.ts: starts a two-resource commit on the database
// named on the command line and kills its own process at the point named (`decision`: just before the
// commit is decided; a number n: after the n-th current document is in place), as a crash would.
// The commit also writes an outbox document (CRASH_OUTBOX), which must exist exactly if it happened.
import type { Resource } from '@medplum/fhirtypes';
import { MongoClient } from 'mongodb';
import { parseJsonText } from '../../src/fhir/json-text';
import { ResourceStore } from '../../src/store/resource-store';

export const CRASH_OUTBOX = '_test_crash_outbox';

async function main(): Promise<void> {
  const [uri, dbName, crashAt] = process.argv.slice(2);
  const client = await MongoClient.connect(uri);
  const store = new ResourceStore(client.db(dbName), { serverId: 'crash-test-server' });
  const patient = await store.read('Patient', 'crash-patient');
  if (crashAt === 'decision') store.journal.beforeDecisionHook = () => void process.kill(process.pid, 'SIGKILL');
  store.journal.afterWriteHook = (applied) => {
    if (applied === Number(crashAt)) process.kill(process.pid, 'SIGKILL');
  };
  await store.commit(
    [
      {
        type: 'Patient',
        id: 'crash-patient',
        method: 'PUT',
        previous: patient,
        // A decimal written 1.50: recovery must rebuild the current document with its written text.
        resource: parseJsonText(
          '{"resourceType":"Patient","active":false,"extension":[{"url":"http://clinic.example.org/x","valueDecimal":1.50}]}',
        ) as Resource,
      },
      {
        type: 'Observation',
        id: 'crash-obs',
        method: 'PUT',
        previous: null,
        resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } },
      },
    ],
    undefined,
    [{ collection: CRASH_OUTBOX, _id: 'crash-event', mode: 'insert-once', fields: { about: 'Patient/crash-patient' } }],
  );
}

if (require.main === module) void main();
