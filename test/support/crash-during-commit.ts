// Run as a child process by test/store/journal.test.ts: starts a two-resource commit on the database
// named on the command line and kills its own process after the first write, as a crash would.
import { MongoClient } from 'mongodb';
import { ResourceStore } from '../../src/store/resource-store';

async function main(): Promise<void> {
  const [uri, dbName, crashAfter] = process.argv.slice(2);
  const client = await MongoClient.connect(uri);
  const store = new ResourceStore(client.db(dbName));
  const patient = await store.read('Patient', 'crash-patient');
  store.journal.afterWriteHook = (applied) => {
    if (applied === Number(crashAfter)) process.kill(process.pid, 'SIGKILL');
  };
  await store.commit([
    {
      type: 'Patient',
      id: 'crash-patient',
      method: 'PUT',
      previous: patient,
      resource: { resourceType: 'Patient', active: false },
    },
    {
      type: 'Observation',
      id: 'crash-obs',
      method: 'PUT',
      previous: null,
      resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } },
    },
  ]);
}

void main();
