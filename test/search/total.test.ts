import { MongoClient, type CommandStartedEvent, type Db } from 'mongodb';
import { loadCohort } from '../../bench/search-cohort';
import pino from 'pino';
import { search, SearchParameterRegistry } from '../../src/search';
import { markWideDates } from '../../src/search/date-spans';
import { indexedTypes } from '../../src/search/indexes';
import { databaseNameFor } from '../support/server';

let client: MongoClient;
let db: Db;
const registry = new SearchParameterRegistry();
const dbName = databaseNameFor(__filename);
const options = { maxCount: 100, defaultCount: 20, pageSecret: 'total-secret' };
const commands: string[] = [];

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string, { monitorCommands: true });
  db = client.db(dbName);
  await db.dropDatabase();
  await loadCohort(db, registry, 4, () => undefined);
  // As a server's start-up leaves it: the settings say that stored dates carry their span markers.
  await markWideDates(db, indexedTypes(), pino({ level: 'silent' }));
  client.on('commandStarted', (event: CommandStartedEvent) => commands.push(event.commandName));
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

async function run(type: string, query: string) {
  commands.length = 0;
  const bundle = await search(
    db,
    { resourceType: type, params: new URLSearchParams(query), baseUrl: 'http://total.test/fhir' },
    registry,
    options,
  );
  // buildInfo is asked once per Db (engine features); what matters is the reads.
  return { bundle, commands: commands.filter((name) => name !== 'buildInfo') };
}

// Counting reads every match again, which on a scanning engine doubles the cost of a search.
describe('Bundle.total without a second read', () => {
  it('takes the total from a first page that holds every match', async () => {
    const { bundle, commands: sent } = await run('MedicationDispense', 'prescription=MedicationRequest/mr1-0');
    expect(bundle.total).toBe(2);
    expect(bundle.entry).toHaveLength(2);
    expect(sent).toEqual(['find']);
  });

  it('counts when there are more matches than the page shows and the client asks for the total', async () => {
    for (const mode of ['accurate', 'estimate']) {
      const { bundle, commands: sent } = await run('MedicationDispense', `patient=Patient/p1&_count=4&_total=${mode}`);
      expect(bundle.total).toBe(6);
      expect(bundle.entry).toHaveLength(4);
      expect(sent).toContain('aggregate');
    }
  });

  it('does not count a larger result unless asked (HAPI), and carries an asked total to the next page', async () => {
    const first = await run('MedicationDispense', 'patient=Patient/p1&_count=4');
    expect(first.bundle.total).toBeUndefined();
    expect(first.bundle.entry).toHaveLength(4);
    expect(first.commands).toEqual(['find']);

    const asked = await run('MedicationDispense', 'patient=Patient/p1&_count=4&_total=accurate');
    const next = asked.bundle.link?.find((l) => l.relation === 'next')?.url as string;
    const second = await run('MedicationDispense', new URL(next).searchParams.toString());
    expect(second.bundle.total).toBe(6);
    expect(second.bundle.entry).toHaveLength(2);
    expect(second.commands).not.toContain('aggregate');
  });

  it('gives no total at all for _total=none, even a free one', async () => {
    const { bundle } = await run('MedicationDispense', 'prescription=MedicationRequest/mr1-0&_total=none');
    expect(bundle.total).toBeUndefined();
    expect(bundle.entry).toHaveLength(2);
  });

  it('counts for _summary=count and an empty page size, and states an empty result as 0', async () => {
    expect((await run('MedicationDispense', 'patient=Patient/p1&_summary=count')).bundle.total).toBe(6);
    expect((await run('MedicationDispense', 'patient=Patient/p1&_count=0')).bundle.total).toBe(6);
    const none = await run('MedicationDispense', 'patient=Patient/nobody');
    expect(none.bundle.total).toBe(0);
    expect(none.commands).toEqual(['find']);
  });

  it('asks nothing of a type whose filter cannot match, and counts it as 0', async () => {
    // The reverse chain finds no Observation, so no Patient can match: only the inner read runs.
    for (const query of [
      '_has:Observation:patient:code=no-such-code',
      '_has:Observation:patient:code=x&_total=accurate',
    ]) {
      const { bundle, commands: sent } = await run('Patient', query);
      expect(bundle.total).toBe(0);
      expect(bundle.entry).toBeUndefined();
      expect(sent).toEqual(['find']);
    }
    const chained = await run('MedicationDispense', 'subject:Patient.name=nobody-is-called-this&_summary=count');
    expect(chained.bundle.total).toBe(0);
    expect(chained.commands).toEqual(['find']);
  });
});
