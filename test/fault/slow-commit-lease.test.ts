// A commit slower than the journal lease is not swept: with JOURNAL_LEASE_MS=300, 1,000-entry
// transactions and ~0.9 MB Patients created 12 at a time take far longer than the lease. A commit in
// progress belongs to a live process and must never be undone, so every write answered 2xx is there
// afterwards, current and in history (vread), also after the sweep has had time to run again.
import type { Patient } from '@medplum/fhirtypes';
import { describeAnswer, fhir, FhirAnswer, mapLimit } from './fhir-client';
import { FaultCluster, sleep } from './harness';
import { atomicityProblems, medicationSet, MedicationSet, observeSet, postTransaction } from './medication-set';

const LEASE_MS = 300;
const THOUSAND = { requests: 400, dispenses: 300, observations: 299 };
const BIG_PATIENTS = 12;
const AT_A_TIME = 12;

interface BigCreate {
  answer: FhirAnswer;
  ms: number;
  given: string;
}

/** A valid Patient of about 0.9 MB: one long given name (indexed, so its document is larger still). */
function bigPatient(i: number): Patient {
  const words = `patient ${i} lorem ipsum dolor sit amet `.repeat(900_000 / 35);
  return { resourceType: 'Patient', name: [{ family: `Big${i}`, given: [words] }] };
}

async function createBig(base: string, i: number): Promise<BigCreate> {
  const patient = bigPatient(i);
  const started = Date.now();
  const answer = await fhir(base, 'POST', 'Patient', { body: patient, timeoutMs: 180_000 });
  return { answer, ms: Date.now() - started, given: patient.name?.[0].given?.[0] ?? '' };
}

/** Problems with one acknowledged big Patient: it must read, and vread at its version, with its content. */
async function bigProblems(base: string, created: BigCreate): Promise<string[]> {
  const id = created.answer.body?.id;
  const version = created.answer.body?.meta?.versionId;
  const problems: string[] = [];
  for (const path of [`Patient/${id}`, `Patient/${id}/_history/${version}`]) {
    const read = await fhir(base, 'GET', path);
    const given = read.body?.resourceType === 'Patient' ? read.body.name?.[0].given?.[0] : undefined;
    if (read.status !== 200) problems.push(`${path} (answered ${created.answer.status}) reads ${describeAnswer(read)}`);
    else if (given !== created.given) problems.push(`${path} reads 200 with other content`);
  }
  return problems;
}

async function transactionProblems(base: string, set: MedicationSet, answer: FhirAnswer, since: string) {
  if (answer.status !== 200) return [];
  const verdict = atomicityProblems(set, await observeSet(base, set, since, { readFound: false }));
  const lost = verdict.whole ? [] : [`a 1,000-entry transaction answered 200 is not stored`];
  return [...lost, ...verdict.problems].map((p) => `${set.tag}: ${p}`);
}

let cluster: FaultCluster;

describe('a commit slower than the journal lease', () => {
  beforeAll(async () => {
    cluster = await FaultCluster.start('fault_lease', [
      { serverId: 'lease-1', env: { JOURNAL_LEASE_MS: String(LEASE_MS), MAX_BUNDLE_ENTRIES: '1000' } },
    ]);
  }, 120_000);

  afterAll(async () => {
    console.log(cluster?.report());
    await cluster?.stop();
  }, 60_000);

  it('keeps every write answered 2xx, current and in history', async () => {
    const base = cluster.server.base;
    const since = new Date(Date.now() - 2_000).toISOString();
    const sets = [0, 1].map((i) => medicationSet(`lease-${Date.now().toString(36)}-${i}`, THOUSAND));
    expect(sets[0].total).toBe(1000);
    // Both transactions and the big creates at once, so that every commit overlaps several sweeps.
    const transactions = Promise.all(
      sets.map(async (set) => {
        const started = Date.now();
        return { answer: await postTransaction(base, set, 300_000), ms: Date.now() - started };
      }),
    );
    const bigs = await mapLimit(
      Array.from({ length: BIG_PATIENTS }, (_, i) => i),
      AT_A_TIME,
      (i) => createBig(base, i),
    );
    const committed = await transactions;

    const loadMs = Date.now() - Date.parse(since) - 2_000;
    // A sweep runs at least every second: give it several chances to undo something it should not, then
    // look (an undo is permanent, so one look afterwards sees every undo before it as well).
    await sleep(Math.max(3_000, LEASE_MS * 10));
    const checkStarted = Date.now();
    const problems = [
      ...(await Promise.all(sets.map((set, i) => transactionProblems(base, set, committed[i].answer, since)))).flat(),
      ...(
        await mapLimit(bigs, 4, (b) => (b.answer.status === 201 ? bigProblems(base, b) : Promise.resolve([])))
      ).flat(),
    ];
    console.log(
      `load ${loadMs} ms (transactions ${committed.map((c) => c.ms).join(', ')} ms; big creates ` +
        `${bigs.map((b) => b.ms).join(', ')} ms); check ${Date.now() - checkStarted} ms`,
    );

    // Every request is answered with success: a lease is no reason to fail a commit that is running.
    const statuses = [...committed.map((c) => c.answer), ...bigs.map((b) => b.answer)].map(describeAnswer);
    expect({ statuses, problems: problems.length, first: problems.slice(0, 20) }).toEqual({
      statuses: [...sets.map(() => '200'), ...bigs.map(() => '201')],
      problems: 0,
      first: [],
    });
    // The harness check: the commits really outlasted the lease.
    expect(Math.min(...committed.map((c) => c.ms))).toBeGreaterThan(LEASE_MS);
    expect(Math.max(...bigs.map((b) => b.ms))).toBeGreaterThan(LEASE_MS);
  }, 420_000);
});
