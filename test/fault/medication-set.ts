// The unit of the fault tests: a transaction Bundle of one Patient and resources referring to it by
// fullUrl, every resource tagged with the set's own tag so that search finds exactly that set, and an
// inspection that tells whether the set is stored all-or-nothing.
import type {
  Bundle,
  BundleEntry,
  MedicationDispense,
  MedicationRequest,
  Observation,
  Patient,
  Reference,
  Resource,
} from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { bundleOf, describeAnswer, fhir, FhirAnswer, mapLimit, resourcesOf } from './fhir-client';

export const FAULT_TAG_SYSTEM = 'https://meds-fhir.test/fault-trial';
const IDENTIFIER_SYSTEM = 'https://meds-fhir.test/fault-identifier';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';

export const SET_TYPES = ['Patient', 'MedicationRequest', 'MedicationDispense', 'Observation'] as const;
export type SetType = (typeof SET_TYPES)[number];

export interface SetShape {
  /**
   * PUT with client ids, so each can be read by id even when the commit's answer never came. The
   * Patient is a POST: the server does not rewrite references to the fullUrl of a plain PUT entry.
   */
  requests: number;
  /** POST, each authorized by one of the requests (referenced by its id). */
  dispenses: number;
  /** POST with ifNoneExist on an identifier: conditional creates, which take claims. */
  observations: number;
}

/** 100 entries: the Patient, 40 prescriptions, 30 fills, 29 drug screens. */
export const HUNDRED: SetShape = { requests: 40, dispenses: 30, observations: 29 };

export interface MedicationSet {
  tag: string;
  /** Ids of the PUT entries (the MedicationRequests). */
  requestIds: string[];
  expected: Record<SetType, number>;
  total: number;
  bundle: Bundle;
}

function tagged<T extends Resource>(resource: T, tag: string): T {
  return { ...resource, meta: { tag: [{ system: FAULT_TAG_SYSTEM, code: tag }] } };
}

export function tagQuery(tag: string): string {
  return `_tag=${encodeURIComponent(`${FAULT_TAG_SYSTEM}|${tag}`)}`;
}

function prescription(tag: string, key: string, i: number, patient: Reference<Patient>): MedicationRequest {
  return tagged(
    {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      subject: patient,
      authoredOn: '2026-09-01',
      medicationCodeableConcept: { coding: [{ system: RXNORM, code: '1010606' }], text: `rx ${i}` },
      identifier: [{ system: IDENTIFIER_SYSTEM, value: `${key}-rx-${i}` }],
    },
    tag,
  );
}

function dispense(tag: string, patient: Reference<Patient>, rx: Reference<MedicationRequest>): MedicationDispense {
  return tagged(
    {
      resourceType: 'MedicationDispense',
      status: 'completed',
      subject: patient,
      authorizingPrescription: [rx],
      whenHandedOver: '2026-09-02T10:00:00Z',
      medicationCodeableConcept: { coding: [{ system: RXNORM, code: '1010606' }] },
      quantity: { value: 14, unit: 'film' },
    },
    tag,
  );
}

function drugScreen(tag: string, key: string, i: number, patient: Reference<Patient>): Observation {
  return tagged(
    {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '19295-5' }], text: 'Opiates [Presence] in Urine' },
      subject: patient,
      effectiveDateTime: '2026-09-03T09:00:00Z',
      identifier: [{ system: IDENTIFIER_SYSTEM, value: `${key}-uds-${i}` }],
      valueCodeableConcept: { text: 'negative' },
    },
    tag,
  );
}

/**
 * A transaction Bundle of `shape` for one new Patient. The tag appears only inside the resources (ids
 * and identifiers use another random key), so a database command that carries the tag is a write of
 * the set's content, never one of the look-ups that prepare the transaction.
 */
export function medicationSet(tag: string, shape: SetShape = HUNDRED): MedicationSet {
  const key = randomUUID().slice(0, 13);
  const patientUrl = `urn:uuid:${randomUUID()}`;
  const patientRef: Reference<Patient> = { reference: patientUrl };
  const patient: Patient = tagged(
    { resourceType: 'Patient', name: [{ family: 'Fault', given: [key] }], birthDate: '1980-01-01' },
    tag,
  );
  const entries: BundleEntry[] = [
    { fullUrl: patientUrl, resource: patient, request: { method: 'POST', url: 'Patient' } },
  ];
  const rxIds: string[] = [];
  for (let i = 0; i < shape.requests; i++) {
    const id = `${key}-rx-${i}`;
    rxIds.push(id);
    entries.push({
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource: { ...prescription(tag, key, i, patientRef), id },
      request: { method: 'PUT', url: `MedicationRequest/${id}` },
    });
  }
  for (let i = 0; i < shape.dispenses; i++) {
    const rx: Reference<MedicationRequest> = { reference: `MedicationRequest/${rxIds[i % rxIds.length]}` };
    entries.push({
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource: dispense(tag, patientRef, rx),
      request: { method: 'POST', url: 'MedicationDispense' },
    });
  }
  for (let i = 0; i < shape.observations; i++) {
    entries.push({
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource: drugScreen(tag, key, i, patientRef),
      request: {
        method: 'POST',
        url: 'Observation',
        ifNoneExist: `identifier=${encodeURIComponent(`${IDENTIFIER_SYSTEM}|${key}-uds-${i}`)}`,
      },
    });
  }
  const expected: Record<SetType, number> = {
    Patient: 1,
    MedicationRequest: shape.requests,
    MedicationDispense: shape.dispenses,
    Observation: shape.observations,
  };
  return {
    tag,
    requestIds: rxIds,
    expected,
    total: entries.length,
    bundle: { resourceType: 'Bundle', type: 'transaction', entry: entries },
  };
}

export function postTransaction(base: string, set: MedicationSet, timeoutMs = 120_000): Promise<FhirAnswer> {
  return fhir(base, 'POST', '', { body: set.bundle, timeoutMs });
}

/** Follows `next` links (bounded) and returns every entry of every page. */
export async function allPages(base: string, path: string, maxPages = 50): Promise<BundleEntry[]> {
  const entries: BundleEntry[] = [];
  let url: string | undefined = path;
  for (let page = 0; url && page < maxPages; page++) {
    const answer: FhirAnswer = await fhir(base, 'GET', url, { timeoutMs: 60_000 });
    if (answer.status !== 200) throw new Error(`GET ${url}: ${describeAnswer(answer)}`);
    const bundle = bundleOf(answer);
    entries.push(...(bundle.entry ?? []));
    url = bundle.link?.find((l) => l.relation === 'next')?.url;
  }
  return entries;
}

function hasTag(resource: Resource | undefined, tag: string): boolean {
  return Boolean(resource?.meta?.tag?.some((t) => t.system === FAULT_TAG_SYSTEM && t.code === tag));
}

/** What a client sees of one set, through every kind of read the server offers. */
export interface SetObservation {
  /** `_summary=count` totals per type. */
  counts: Record<SetType, number>;
  /** Resources returned by a full search per type. */
  found: Record<SetType, Resource[]>;
  /** How many of the PUT entries' ids (the MedicationRequests) read 200. */
  readable: number;
  /** Reads of ids the search returned that did not answer 200. */
  unreadableFound: string[];
  /** Statuses other than 200/404 seen when reading by id. */
  oddReads: string[];
  /** History versions tagged with the set, per type (type-level history since the set was sent). */
  versions: Record<SetType, number>;
  /** References from the set's resources that do not read 200. */
  dangling: string[];
  /** Patients that `MedicationRequest?_include=MedicationRequest:subject` returned. */
  includedPatients: number;
}

function emptyCounts(): Record<SetType, number> {
  return { Patient: 0, MedicationRequest: 0, MedicationDispense: 0, Observation: 0 };
}

async function countOf(base: string, type: SetType, tag: string): Promise<number> {
  const answer = await fhir(base, 'GET', `${type}?${tagQuery(tag)}&_summary=count`);
  if (answer.status !== 200) throw new Error(`count of ${type}: ${describeAnswer(answer)}`);
  return bundleOf(answer).total ?? -1;
}

async function versionsOf(base: string, type: SetType, tag: string, since: string): Promise<number> {
  const entries = await allPages(base, `${type}/_history?_since=${encodeURIComponent(since)}&_count=1000`);
  return entries.filter((e) => hasTag(e.resource, tag)).length;
}

function referencesOf(resource: Resource): string[] {
  const refs: (Reference | undefined)[] = [];
  if (resource.resourceType === 'MedicationRequest' || resource.resourceType === 'Observation') {
    refs.push(resource.subject);
  }
  if (resource.resourceType === 'MedicationDispense')
    refs.push(resource.subject, ...(resource.authorizingPrescription ?? []));
  return refs.map((r) => r?.reference).filter((r): r is string => Boolean(r));
}

/** Reads `paths` (Type/id) and returns each one's status. */
async function statuses(base: string, paths: string[]): Promise<Map<string, number>> {
  const answers = await mapLimit(paths, 8, async (path) => [path, (await fhir(base, 'GET', path)).status] as const);
  return new Map(answers);
}

/**
 * Looks at the set through search, `_summary=count`, reads, history and `_include`. `readFound: false`
 * reads only the PUT entries' ids, not every resource the search returned and every reference (for
 * 1,000-entry sets, where those reads would take most of a test's time).
 */
export async function observeSet(
  base: string,
  set: MedicationSet,
  since: string,
  options: { readFound: boolean } = { readFound: true },
): Promise<SetObservation> {
  const counts = emptyCounts();
  const versions = emptyCounts();
  const found: Record<SetType, Resource[]> = {
    Patient: [],
    MedicationRequest: [],
    MedicationDispense: [],
    Observation: [],
  };
  for (const type of SET_TYPES) {
    counts[type] = await countOf(base, type, set.tag);
    found[type] = (await allPages(base, `${type}?${tagQuery(set.tag)}&_count=1000`))
      .map((e) => e.resource)
      .filter((r): r is Resource => r !== undefined);
    versions[type] = await versionsOf(base, type, set.tag, since);
  }
  const known = set.requestIds.map((id) => `MedicationRequest/${id}`);
  const foundPaths = options.readFound ? SET_TYPES.flatMap((t) => found[t].map((r) => `${t}/${r.id}`)) : [];
  const references = options.readFound ? [...new Set(SET_TYPES.flatMap((t) => found[t].flatMap(referencesOf)))] : [];
  const read = await statuses(base, [...new Set([...known, ...foundPaths, ...references])]);
  const status = (path: string) => read.get(path) ?? 0;
  const include = bundleOf(
    await fhir(base, 'GET', `MedicationRequest?${tagQuery(set.tag)}&_include=MedicationRequest:subject&_count=1000`),
  );
  return {
    counts,
    found,
    readable: known.filter((p) => status(p) === 200).length,
    unreadableFound: foundPaths.filter((p) => status(p) !== 200).map((p) => `${p} → ${status(p)}`),
    oddReads: known.filter((p) => status(p) !== 200 && status(p) !== 404).map((p) => `${p} → ${status(p)}`),
    versions,
    dangling: references.filter((r) => status(r) !== 200).map((r) => `${r} → ${status(r)}`),
    includedPatients: resourcesOf(include, 'Patient').length,
  };
}

function sum(counts: Record<SetType, number>): number {
  return SET_TYPES.reduce((n, t) => n + counts[t], 0);
}

/**
 * Everything that is wrong with an observation of a set that must be stored all-or-nothing: an empty
 * list means the set is entirely absent (`whole` false) or entirely present. Sentences, so a failing
 * test says what it saw.
 */
export function atomicityProblems(set: MedicationSet, seen: SetObservation): { whole: boolean; problems: string[] } {
  const problems: string[] = [];
  const total = sum(seen.counts);
  const whole = total > 0;
  const want = (type: SetType) => (whole ? set.expected[type] : 0);
  if (total !== 0 && total !== set.total) {
    problems.push(`search finds ${total} of the ${set.total} resources (${JSON.stringify(seen.counts)})`);
  }
  for (const type of SET_TYPES) {
    if (seen.counts[type] !== want(type))
      problems.push(`${type}: _summary=count ${seen.counts[type]}, want ${want(type)}`);
    if (seen.found[type].length !== seen.counts[type]) {
      problems.push(`${type}: search returns ${seen.found[type].length} resources but counts ${seen.counts[type]}`);
    }
    if (seen.versions[type] !== want(type)) {
      problems.push(`${type}: history holds ${seen.versions[type]} versions of the set, want ${want(type)}`);
    }
  }
  if (seen.readable !== want('MedicationRequest')) {
    problems.push(`reads by id: ${seen.readable} MedicationRequests read 200, want ${want('MedicationRequest')}`);
  }
  if (seen.unreadableFound.length)
    problems.push(`found by search but not readable: ${seen.unreadableFound.slice(0, 5).join(', ')}`);
  if (seen.oddReads.length) problems.push(`reads neither 200 nor 404: ${seen.oddReads.slice(0, 5).join(', ')}`);
  if (seen.dangling.length) problems.push(`references to missing resources: ${seen.dangling.slice(0, 5).join(', ')}`);
  if (seen.includedPatients !== (seen.counts.MedicationRequest > 0 ? 1 : 0)) {
    problems.push(
      `_include of the subject returns ${seen.includedPatients} Patients for ${seen.counts.MedicationRequest} MedicationRequests`,
    );
  }
  return { whole, problems };
}
