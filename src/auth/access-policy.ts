import type { CareTeam, Consent, Patient, RelatedPerson } from '@medplum/fhirtypes';
import { patientCompartmentParams } from '../fhir/definitions';
import { allOf, anyOf, NOTHING, type MongoFilter } from '../search/compile/element';
import type { CurrentDocument } from '../store/documents';
import { filterMatcher } from '../store/filter-match';
import { consentOpening } from './consent';
import { LABEL_CODE_PATH, SENSITIVE_CODES } from './labels';
import { selfPatient, type Requester } from './requester';
import { grantsFor, type Permission, type ScopeGrant } from './scopes';

/** What the decision needs to look up about the requester (reads straight from the database). */
export interface AccessLookups {
  /** Live resources of `type` that match a search query, at most `limit`. */
  find(type: string, query: [string, string][], limit: number): Promise<CurrentDocument[]>;
  read(type: string, id: string): Promise<CurrentDocument | null>;
  /** A search query compiled to the filter a search would use (for query-restricted scopes). */
  compile(type: string, query: [string, string][]): Promise<MongoFilter>;
}

/** Most patients one user's care teams may reach; more is refused rather than silently cut. */
export const MAX_REACHABLE_PATIENTS = 20_000;

const PATIENT_REFERENCE = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})$/;

/** Types that are in some Patient's compartment (R4 CompartmentDefinition): access follows membership. */
export function inPatientCompartment(type: string): boolean {
  return patientCompartmentParams().has(type);
}

/** Where the filters of history versions differ: they carry `type` and no search values. */
type Target = 'current' | 'history';

/**
 * One requester's access decision, computed once per request and compiled into database filters:
 * which patients each scope context reaches, which sensitivity codes stay hidden, and which patients'
 * Consents open them. Every read of the request goes through `filter`, so searches, totals, includes,
 * chains, `_has`, history and reviews see only what the requester may see.
 */
export class AccessPolicy {
  private readonly queryFilters = new Map<string, MongoFilter>();
  /**
   * The reach of each scope context as compartment references, made once: a practitioner's lists
   * thousands of patients, and every filter of every read and search of the request needs it.
   */
  private readonly reachReferences = new Map<'patient' | 'user', string[]>();

  private constructor(
    readonly requester: Requester,
    /** Patient ids per scope context; undefined means every patient (system/). */
    private readonly reach: { patient: string[]; user: string[] },
    /** Hidden code → patients whose Consent (or self) opens it for this requester. */
    private readonly hidden: Map<string, string[]>,
  ) {}

  static async build(requester: Requester, lookups: AccessLookups, now = new Date()): Promise<AccessPolicy> {
    const self = selfPatient(requester);
    const patientReach = requester.patient ? [requester.patient] : [];
    const hidden = new Map<string, string[]>();
    if (!requester.clearance.has('*')) {
      for (const code of SENSITIVE_CODES.keys()) {
        if (!requester.clearance.has(code)) hidden.set(code, self ? [self] : []);
      }
    }
    // Looked up together: the cache checks them against the journal in one query.
    const [userReach, openings] = await Promise.all([
      requester.grants.some((g) => g.context === 'user') ? userPatients(requester, lookups) : [],
      hidden.size && !requester.unrestricted ? consentOpenings(requester, lookups, now) : [],
    ]);
    for (const opening of openings) {
      for (const code of opening.codes) {
        const patients = hidden.get(code);
        if (patients && !patients.includes(opening.patient)) patients.push(opening.patient);
      }
    }
    const policy = new AccessPolicy(requester, { patient: patientReach, user: userReach }, hidden);
    for (const grant of requester.grants) {
      if (grant.query && grant.resourceType !== '*') {
        policy.queryFilters.set(grant.text, await lookups.compile(grant.resourceType, grant.query));
      }
    }
    return policy;
  }

  /** Whether any scope grants `permission` on `type` (else the interaction is 403). */
  allows(type: string, permission: Permission): boolean {
    return grantsFor(this.requester.grants, type, permission).length > 0;
  }

  /** The codes this requester may not see without a Consent: for the audit and error texts. */
  hiddenCodes(): string[] {
    return [...this.hidden.keys()];
  }

  /**
   * The filter every document of `type` the requester sees matches, granted by any of `permissions`:
   * undefined when nothing is filtered, NOTHING when no scope grants them.
   */
  filter(type: string, permissions: Permission[], target: Target = 'current'): MongoFilter | undefined {
    if (this.requester.unrestricted) return undefined;
    const grants = permissions.flatMap((p) => grantsFor(this.requester.grants, type, p));
    if (!grants.length) return NOTHING;
    let unfiltered = false;
    const alternatives: MongoFilter[] = [];
    for (const grant of new Set(grants)) {
      const filter = this.grantFilter(grant, type, target);
      if (filter === undefined) {
        unfiltered = true;
        break;
      }
      if (filter !== NOTHING) alternatives.push(filter);
    }
    if (!unfiltered && !alternatives.length) return NOTHING;
    const scoped = unfiltered ? undefined : anyOf(alternatives);
    const labels = this.labelFilter();
    if (!scoped) return labels;
    return labels ? allOf([scoped, labels]) : scoped;
  }

  /**
   * History versions of `type` (or, for system history, of any of `types`) the requester sees: types
   * that share one filter are grouped, so a `*` scope makes one or two clauses rather than one per type.
   */
  historyFilter(type: string | undefined, types: readonly string[]): MongoFilter | undefined {
    if (this.requester.unrestricted) return undefined;
    if (type) return this.filter(type, ['r', 's'], 'history');
    const groups = new Map<string, { filter: MongoFilter | undefined; types: string[] }>();
    for (const t of types) {
      const filter = this.filter(t, ['r', 's'], 'history');
      if (filter === NOTHING) continue;
      const key = filter === undefined ? '' : JSON.stringify(filter);
      const group = groups.get(key);
      if (group) group.types.push(t);
      else groups.set(key, { filter, types: [t] });
    }
    if (!groups.size) return NOTHING;
    const clauses = [...groups.values()].map(({ filter, types: grouped }) => {
      const byType = { type: { $in: grouped } };
      return filter === undefined ? byType : allOf([byType, filter]);
    });
    return clauses.length === 1 ? clauses[0] : { $or: clauses };
  }

  /** Whether a stored document (current, or the one a write is about to store) is visible. */
  sees(type: string, doc: CurrentDocument, permissions: Permission[] = ['r', 's']): boolean {
    const filter = this.filter(type, permissions);
    if (filter === undefined) return true;
    if (filter === NOTHING) return false;
    return filterMatcher(filter)(doc);
  }

  /** Whether the requester is cleared (not merely consented) for every code in `codes`. */
  clearedFor(codes: string[]): boolean {
    if (this.requester.unrestricted || this.requester.clearance.has('*')) return true;
    return codes.every((c) => this.requester.clearance.has(c));
  }

  private grantFilter(grant: ScopeGrant, type: string, target: Target): MongoFilter | undefined {
    const parts: MongoFilter[] = [];
    if (grant.context !== 'system' && inPatientCompartment(type)) {
      const references = this.referencesOf(grant.context);
      if (!references.length) return NOTHING;
      parts.push({ compartments: { $in: references } });
    }
    if (grant.query) {
      // Search values are kept only on current documents: a query-restricted grant shows no history.
      if (target === 'history') return NOTHING;
      const query = this.queryFilters.get(grant.text);
      if (query) parts.push(query);
    }
    return parts.length ? allOf(parts) : undefined;
  }

  private referencesOf(context: 'patient' | 'user'): string[] {
    let references = this.reachReferences.get(context);
    if (!references) this.reachReferences.set(context, (references = this.reach[context].map((p) => `Patient/${p}`)));
    return references;
  }

  private labelFilter(): MongoFilter | undefined {
    if (!this.hidden.size) return undefined;
    const closed: string[] = [];
    const clauses: MongoFilter[] = [];
    for (const [code, patients] of this.hidden) {
      if (!patients.length) closed.push(code);
      else {
        clauses.push({
          $or: [{ [LABEL_CODE_PATH]: { $ne: code } }, { compartments: { $in: patients.map((p) => `Patient/${p}`) } }],
        });
      }
    }
    if (closed.length) clauses.unshift({ [LABEL_CODE_PATH]: { $nin: closed } });
    return allOf(clauses);
  }
}

function patientIdOf(reference: string | undefined): string | undefined {
  return reference ? PATIENT_REFERENCE.exec(reference)?.[1] : undefined;
}

function periodCoversNow(period: { start?: string; end?: string } | undefined, now: number): boolean {
  if (!period) return true;
  if (period.start && !(Date.parse(period.start) <= now)) return false;
  if (period.end && !(Date.parse(period.end) >= now)) return false;
  return true;
}

/**
 * The patients a `user/` token reaches: a Practitioner's active care teams' subjects and the patients
 * whose general practitioner it is; a Patient user itself; a RelatedPerson's patient.
 */
async function userPatients(requester: Requester, lookups: AccessLookups): Promise<string[]> {
  const user = requester.fhirUser;
  if (!user) return [];
  if (user.type === 'Patient') return [user.id];
  if (user.type === 'RelatedPerson') {
    const related = (await lookups.read('RelatedPerson', user.id))?.resource as RelatedPerson | undefined;
    const patient = related?.active === false ? undefined : patientIdOf(related?.patient?.reference);
    return patient ? [patient] : [];
  }
  if (user.type !== 'Practitioner') return [];
  const reference = `Practitioner/${user.id}`;
  const limit = MAX_REACHABLE_PATIENTS + 1;
  const [teams, patients] = await Promise.all([
    lookups.find(
      'CareTeam',
      [
        ['participant', reference],
        ['status', 'active'],
      ],
      limit,
    ),
    lookups.find('Patient', [['general-practitioner', reference]], limit),
  ]);
  const now = Date.now();
  const reached = new Set<string>(patients.map((p) => (p.resource as Patient).id as string));
  for (const doc of teams) {
    const team = doc.resource as CareTeam;
    const member = (team.participant ?? []).some(
      (p) => p.member?.reference?.endsWith(reference) && periodCoversNow(p.period, now),
    );
    const patient = patientIdOf(team.subject?.reference);
    if (member && patient) reached.add(patient);
  }
  if (reached.size > MAX_REACHABLE_PATIENTS) {
    throw new Error(`${reference} reaches more than ${MAX_REACHABLE_PATIENTS} patients`);
  }
  return [...reached];
}

/** What the Consents that name the requester (its fhirUser or its organization) open. */
async function consentOpenings(requester: Requester, lookups: AccessLookups, now: Date) {
  const references: string[] = [];
  if (requester.fhirUser) references.push(`${requester.fhirUser.type}/${requester.fhirUser.id}`);
  if (requester.organization) references.push(requester.organization);
  if (!references.length) return [];
  const consents = await Promise.all(
    references.map((reference) =>
      lookups.find(
        'Consent',
        [
          ['actor', reference],
          ['status', 'active'],
        ],
        10_000,
      ),
    ),
  );
  const seen = new Set<string>();
  const openings: { patient: string; codes: string[] }[] = [];
  for (const doc of consents.flat()) {
    if (seen.has(doc._id)) continue;
    seen.add(doc._id);
    const opening = consentOpening(doc.resource as Consent, { references }, now);
    if (opening) openings.push(opening);
  }
  return openings;
}
