import type { CodeableConcept, Resource } from '@medplum/fhirtypes';

/** The code system of the checks' findings (src/checks): what makes a DetectedIssue or Task a finding. */
export const MEDICATION_CHECKS = 'https://meds-fhir.org/fhir/CodeSystem/medication-checks';

const TOPIC_BASE = 'https://meds-fhir.org/fhir/SubscriptionTopic';

/** A topic this server publishes: which writes are its events and which filters narrow them. */
export interface Topic {
  url: string;
  title: string;
  /** Types whose writes may be events of this topic. */
  resourceTypes: string[];
  /** Whether a version of one of resourceTypes is an event of the topic. */
  matches(resource: Resource): boolean;
  /** Filter names the topic defines itself; the type topics also take any search parameter of their type. */
  filters: string[];
  /** Whether a filter name that is not in `filters` may be a search parameter of the focus type. */
  searchParameterFilters: boolean;
}

/** The finding topic (issue 12): a finding was opened, changed or closed. */
export const FINDING_TOPIC = `${TOPIC_BASE}/finding`;

/** The medication set's types whose creates and updates each have a topic. */
export const TYPE_TOPIC_TYPES = [
  'MedicationRequest',
  'MedicationDispense',
  'MedicationStatement',
  'MedicationAdministration',
  'Observation',
  'CarePlan',
  'Encounter',
  'Appointment',
  'Medication',
  'CareTeam',
];

export function typeTopicUrl(type: string): string {
  return `${TOPIC_BASE}/${type}`;
}

function findingCode(resource: Resource): CodeableConcept | undefined {
  if (resource.resourceType !== 'DetectedIssue' && resource.resourceType !== 'Task') return undefined;
  return resource.code;
}

/** The medication-checks codes of a finding (DetectedIssue.code, Task.code). */
export function findingCodes(resource: Resource): string[] {
  return (findingCode(resource)?.coding ?? [])
    .filter((c) => c.system === MEDICATION_CHECKS && typeof c.code === 'string')
    .map((c) => c.code as string);
}

export const TOPICS: readonly Topic[] = [
  {
    url: FINDING_TOPIC,
    title: 'A medication finding was opened, changed or closed',
    resourceTypes: ['DetectedIssue', 'Task'],
    matches: (resource) => findingCodes(resource).length > 0,
    filters: ['patient', 'code', 'status', 'care-team'],
    searchParameterFilters: false,
  },
  ...TYPE_TOPIC_TYPES.map((type): Topic => ({
    url: typeTopicUrl(type),
    title: `A ${type} was created or updated`,
    resourceTypes: [type],
    matches: () => true,
    filters: ['patient', 'care-team'],
    searchParameterFilters: true,
  })),
];

const byUrl = new Map(TOPICS.map((t) => [t.url, t]));

export function topicOf(url: string | undefined): Topic | undefined {
  return url === undefined ? undefined : byUrl.get(url);
}

/** Types that have some topic: only their writes can be events. */
export const TOPIC_TYPES: ReadonlySet<string> = new Set(TOPICS.flatMap((t) => t.resourceTypes));

/** The topics a committed version is an event of (creates and updates; a deletion is none). */
export function topicsOfVersion(resource: Resource): string[] {
  return TOPICS.filter((t) => t.resourceTypes.includes(resource.resourceType) && t.matches(resource)).map((t) => t.url);
}
