// Readers during a commit: while 100-entry transactions commit (no crash), concurrent clients search,
// count, include, page through history and read by id, over and over. Every one of them must see the
// in-flight set entirely or not at all, and once a client has seen it, it must never vanish again.
import { bundleOf, fhir, resourcesOf } from './fhir-client';
import { FaultCluster } from './harness';
import { FAULT_TAG_SYSTEM, medicationSet, MedicationSet, postTransaction, tagQuery } from './medication-set';

const ROUNDS = 6;
const READERS = 4;
const SET_TYPES_PARAM = '_type=Patient,MedicationRequest,MedicationDispense,Observation';

/** What one probe saw: 'none', 'all', or a sentence saying how it was partial. */
type Sight = { kind: 'none' } | { kind: 'all' } | { kind: 'partial'; what: string };

const none: Sight = { kind: 'none' };
const all: Sight = { kind: 'all' };

/** `got` must be one of the two whole states (`empty` or `full`); anything else is partial. */
function judge(what: string, got: string, empty: string, full: string): Sight {
  if (got === empty) return none;
  if (got === full) return all;
  return { kind: 'partial', what: `${what}: ${got} (want ${empty} or ${full})` };
}

type Probe = (base: string, set: MedicationSet, since: string) => Promise<Sight>;

/** Every way of reading the set; each returns what it saw of it. */
const PROBES: Record<string, Probe> = {
  async 'system search _summary=count'(base, set) {
    const total = bundleOf(await fhir(base, 'GET', `?${SET_TYPES_PARAM}&${tagQuery(set.tag)}&_summary=count`)).total;
    return judge('total', String(total), '0', String(set.total));
  },
  async 'MedicationRequest _summary=count'(base, set) {
    const total = bundleOf(await fhir(base, 'GET', `MedicationRequest?${tagQuery(set.tag)}&_summary=count`)).total;
    return judge('total', String(total), '0', String(set.expected.MedicationRequest));
  },
  async 'MedicationRequest search with _include of the subject'(base, set) {
    const bundle = bundleOf(
      await fhir(base, 'GET', `MedicationRequest?${tagQuery(set.tag)}&_include=MedicationRequest:subject&_count=200`),
    );
    const got = `${resourcesOf(bundle, 'MedicationRequest').length} MedicationRequests + ${resourcesOf(bundle, 'Patient').length} Patients`;
    return judge(
      'entries',
      got,
      '0 MedicationRequests + 0 Patients',
      `${set.expected.MedicationRequest} MedicationRequests + 1 Patients`,
    );
  },
  async 'Patient search with _revinclude'(base, set) {
    const bundle = bundleOf(
      await fhir(base, 'GET', `Patient?${tagQuery(set.tag)}&_revinclude=Observation:subject&_count=200`),
    );
    const got = `${resourcesOf(bundle, 'Patient').length} Patients + ${resourcesOf(bundle, 'Observation').length} Observations`;
    return judge(
      'entries',
      got,
      '0 Patients + 0 Observations',
      `1 Patients + ${set.expected.Observation} Observations`,
    );
  },
  async 'MedicationDispense search'(base, set) {
    const found = resourcesOf(bundleOf(await fhir(base, 'GET', `MedicationDispense?${tagQuery(set.tag)}&_count=200`)));
    return judge('entries', String(found.length), '0', String(set.expected.MedicationDispense));
  },
  async 'MedicationRequest type history'(base, set, since) {
    const bundle = bundleOf(
      await fhir(base, 'GET', `MedicationRequest/_history?_since=${encodeURIComponent(since)}&_count=1000`),
    );
    const mine = (bundle.entry ?? []).filter((e) =>
      e.resource?.meta?.tag?.some((t) => t.system === FAULT_TAG_SYSTEM && t.code === set.tag),
    );
    return judge('versions', String(mine.length), '0', String(set.expected.MedicationRequest));
  },
  async 'reads and vreads by id'(base, set) {
    // Reads one after the other: visibility may only ever go from 404 to 200 along the sequence.
    const first = `MedicationRequest/${set.requestIds[0]}`;
    const last = `MedicationRequest/${set.requestIds[set.requestIds.length - 1]}`;
    const sequence: string[] = [];
    const firstRead = await fhir(base, 'GET', first);
    sequence.push(`${first} ${firstRead.status}`);
    sequence.push(`${last} ${(await fhir(base, 'GET', last)).status}`);
    sequence.push(`${first}/_history/1 ${(await fhir(base, 'GET', `${first}/_history/1`)).status}`);
    const subject =
      firstRead.body?.resourceType === 'MedicationRequest' ? firstRead.body.subject?.reference : undefined;
    if (subject) sequence.push(`${subject} ${(await fhir(base, 'GET', subject)).status}`);
    const statuses = sequence.map((s) => s.slice(s.lastIndexOf(' ') + 1));
    const monotonic = statuses.every(
      (st, i) => (st === '200' || st === '404') && !(st === '404' && statuses[i - 1] === '200'),
    );
    if (!monotonic) return { kind: 'partial', what: sequence.join(', ') };
    return statuses.includes('200') ? all : none;
  },
};

interface Sample {
  probe: string;
  sight: Sight;
  /** When the probe started, relative to the transaction's send. */
  startedMs: number;
  endedMs: number;
}

/** One reader: runs the probes round-robin until `done()`, never letting a seen set vanish. */
async function reader(
  base: string,
  set: MedicationSet,
  since: string,
  sentAt: number,
  offset: number,
  done: () => boolean,
): Promise<Sample[]> {
  const names = Object.keys(PROBES);
  const samples: Sample[] = [];
  for (let i = offset; !done() && samples.length < 500; i++) {
    const probe = names[i % names.length];
    const startedMs = Date.now() - sentAt;
    const sight = await PROBES[probe](base, set, since);
    samples.push({ probe, sight, startedMs, endedMs: Date.now() - sentAt });
  }
  return samples;
}

/** The problems in one reader's samples: partial sights, and a set seen whole that later is not there. */
function problemsOf(samples: Sample[], commitMs: number): string[] {
  const problems: string[] = [];
  let seenWhole: Sample | undefined;
  for (const s of samples) {
    const at = `at +${s.startedMs}..${s.endedMs} ms of a ${commitMs} ms transaction`;
    if (s.sight.kind === 'partial') problems.push(`${s.probe} ${at}: ${s.sight.what}`);
    if (s.sight.kind === 'all') seenWhole ??= s;
    if (s.sight.kind === 'none' && seenWhole && s.startedMs > seenWhole.endedMs) {
      problems.push(
        `${s.probe} ${at}: none of the set, which "${seenWhole.probe}" saw whole at +${seenWhole.endedMs} ms`,
      );
    }
  }
  return problems;
}

let cluster: FaultCluster;

describe('readers during a 100-entry transaction commit', () => {
  beforeAll(async () => {
    cluster = await FaultCluster.start('fault_readers', [{ serverId: 'readers-1' }]);
  }, 120_000);

  afterAll(async () => {
    console.log(cluster?.report());
    await cluster?.stop();
  }, 60_000);

  it(`never shows part of an in-flight transaction (${ROUNDS} transactions, ${READERS} readers)`, async () => {
    const base = cluster.server.base;
    const problems: string[] = [];
    let during = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const set = medicationSet(`readers-${Date.now().toString(36)}-${round}`);
      const since = new Date(Date.now() - 2_000).toISOString();
      const sentAt = Date.now();
      let answeredAt: number | undefined;
      const transaction = postTransaction(base, set).then((a) => {
        answeredAt = Date.now();
        return a;
      });
      const readers = Array.from({ length: READERS }, (_, r) =>
        reader(base, set, since, sentAt, r, () => answeredAt !== undefined),
      );
      const answer = await transaction;
      const samples = (await Promise.all(readers)).map((s) => {
        problems.push(...problemsOf(s, (answeredAt as number) - sentAt));
        return s;
      });
      expect(answer.status).toBe(200);
      during += samples.flat().filter((s) => s.endedMs < (answeredAt as number) - sentAt).length;
      // After the answer every probe sees the whole set.
      for (const [name, probe] of Object.entries(PROBES)) {
        const sight = await probe(base, set, since);
        if (sight.kind !== 'all') problems.push(`${name} after the answer: ${JSON.stringify(sight)}`);
      }
    }
    // The harness check: the probes really ran while the commits were in flight.
    expect(during).toBeGreaterThanOrEqual(ROUNDS * READERS);
    expect({ problems: problems.length, first: problems.slice(0, 25) }).toEqual({ problems: 0, first: [] });
  }, 240_000);
});
