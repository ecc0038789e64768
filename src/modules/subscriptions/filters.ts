import type { Resource } from '@medplum/fhirtypes';
import sift from 'sift';
import type { ServerContext } from '../../rest/context';
import type { CurrentDocument } from '../../store/documents';
import type { FilterCriterion } from './spec';
import { findingCodes, MEDICATION_CHECKS } from './topics';

/** A version as the filters see it: its resource, search values and compartments. */
export type EventVersion = Pick<CurrentDocument, 'resource' | 'sp' | 'compartments'>;

const PATIENT = /^(?:.*\/)?(?:Patient\/)?([A-Za-z0-9\-.]{1,64})$/;

/**
 * Matches events against subscriptions' filters. One matcher serves one fan-out batch: the patients of
 * a care team member and the compiled search filters are looked up once per batch.
 */
export class FilterMatcher {
  private readonly careTeams = new Map<string, Promise<Set<string>>>();
  private readonly compiled = new Map<string, Promise<(doc: unknown) => boolean>>();

  constructor(private readonly context: ServerContext) {}

  async matches(filters: FilterCriterion[], version: EventVersion): Promise<boolean> {
    for (const filter of filters) if (!(await this.matchOne(filter, version))) return false;
    return true;
  }

  private async matchOne(filter: FilterCriterion, version: EventVersion): Promise<boolean> {
    const resource = version.resource;
    const compartments = version.compartments ?? [];
    switch (filter.name) {
      case 'patient': {
        const id = PATIENT.exec(filter.value)?.[1];
        return id !== undefined && compartments.includes(`Patient/${id}`);
      }
      case 'care-team': {
        const patients = await this.careTeamPatients(filter.value);
        return compartments.some((c) => patients.has(c));
      }
      case 'code':
        if (isFinding(resource)) return codeMatches(resource, filter.value);
        break;
      case 'status':
        if (isFinding(resource))
          return filter.value.split(',').includes((resource as { status?: string }).status ?? '');
        break;
    }
    return (await this.searchFilter(resource.resourceType, filter))(version);
  }

  /** Patients whose active CareTeam has `member` (Practitioner/X) as a participant, as compartment names. */
  private careTeamPatients(member: string): Promise<Set<string>> {
    let found = this.careTeams.get(member);
    if (!found) {
      found = (async () => {
        const { findMatches } = this.context;
        if (!findMatches) return new Set<string>();
        const query: [string, string][] = [
          ['participant', member],
          ['status', 'active'],
        ];
        const teams = await findMatches(
          'CareTeam',
          query,
          20_000,
          baseUrl(this.context),
          this.context.store.directReader(),
        );
        const patients = new Set<string>();
        for (const team of teams) {
          const ref = (team.resource as { subject?: { reference?: string } }).subject?.reference;
          const id = ref ? /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(ref)?.[1] : undefined;
          if (id) patients.add(`Patient/${id}`);
        }
        return patients;
      })();
      this.careTeams.set(member, found);
    }
    return found;
  }

  /** Any other filter is a search parameter of the focus type, matched as a search would match it. */
  private searchFilter(type: string, filter: FilterCriterion): Promise<(doc: unknown) => boolean> {
    const key = `${type}?${filter.name}=${filter.value}`;
    let test = this.compiled.get(key);
    if (!test) {
      test = compileFilter(this.context, type, filter).then((f) => sift(f));
      this.compiled.set(key, test);
    }
    return test;
  }
}

/** A filter's search query compiled as a search would (throws FhirError for an unknown parameter). */
export async function compileFilter(context: ServerContext, type: string, filter: FilterCriterion) {
  if (!context.compileQuery) throw new Error('subscription filters need the search module');
  return context.compileQuery(type, [[filter.name, filter.value]], baseUrl(context));
}

function baseUrl(context: ServerContext): string {
  return context.config.publicBaseUrl ?? 'http://localhost/fhir';
}

function isFinding(resource: Resource): boolean {
  return findingCodes(resource).length > 0;
}

/** `code`, `system|code` or `|code`, comma-separated alternatives, over the finding's medication-checks codes. */
function codeMatches(resource: Resource, value: string): boolean {
  const codes = findingCodes(resource);
  return value.split(',').some((token) => {
    const bar = token.indexOf('|');
    if (bar < 0) return codes.includes(token);
    const system = token.slice(0, bar);
    return (system === '' || system === MEDICATION_CHECKS) && codes.includes(token.slice(bar + 1));
  });
}
