import type { SearchParameter } from '@medplum/fhirtypes';

const CARE_TEAM_EXTENSION = 'https://meds-fhir.org/fhir/StructureDefinition/finding-care-team';

/**
 * SearchParameters the server defines for its own resources (standing findings, src/modules/findings):
 * fixed like the specification's, active from the first start, since only the server writes the
 * elements they index.
 * - `care-team`: the members of the patient's care teams, which each finding carries (the worklist:
 *   `Task?care-team=Practitioner/X`);
 * - `status` of DetectedIssue, which R4 does not define (Task's it does): open findings are
 *   `preliminary` or `final`;
 * - `priority-rank`: Task.priority and DetectedIssue.severity as numbers, most pressing highest, because
 *   their codes do not sort in clinical order (`_sort=-priority-rank,-authored-on`).
 */
export const SERVER_SEARCH_PARAMETERS: SearchParameter[] = [
  {
    resourceType: 'SearchParameter',
    id: 'finding-care-team',
    url: 'https://meds-fhir.org/fhir/SearchParameter/finding-care-team',
    name: 'care-team',
    status: 'active',
    description: "A member of the care team of the finding's patient (CareTeam.participant.member)",
    code: 'care-team',
    base: ['DetectedIssue', 'Task'],
    type: 'reference',
    expression: `DetectedIssue.extension('${CARE_TEAM_EXTENSION}').value | Task.extension('${CARE_TEAM_EXTENSION}').value`,
    target: ['Practitioner', 'PractitionerRole', 'Organization', 'RelatedPerson', 'CareTeam'],
  },
  {
    resourceType: 'SearchParameter',
    id: 'detectedissue-status',
    url: 'https://meds-fhir.org/fhir/SearchParameter/detectedissue-status',
    name: 'status',
    status: 'active',
    description: 'The status of the DetectedIssue',
    code: 'status',
    base: ['DetectedIssue'],
    type: 'token',
    expression: 'DetectedIssue.status',
  },
  {
    resourceType: 'SearchParameter',
    id: 'task-priority-rank',
    url: 'https://meds-fhir.org/fhir/SearchParameter/task-priority-rank',
    name: 'priority-rank',
    status: 'active',
    description: 'Task.priority as a number: stat 4, asap 3, urgent 2, routine or none 1',
    code: 'priority-rank',
    base: ['Task'],
    type: 'number',
    expression: "iif(Task.priority = 'stat', 4, iif(Task.priority = 'asap', 3, iif(Task.priority = 'urgent', 2, 1)))",
  },
  {
    resourceType: 'SearchParameter',
    id: 'detectedissue-priority-rank',
    url: 'https://meds-fhir.org/fhir/SearchParameter/detectedissue-priority-rank',
    name: 'priority-rank',
    status: 'active',
    description: 'DetectedIssue.severity as a number: high 3, moderate 2, low or none 1',
    code: 'priority-rank',
    base: ['DetectedIssue'],
    type: 'number',
    expression: "iif(DetectedIssue.severity = 'high', 3, iif(DetectedIssue.severity = 'moderate', 2, 1))",
  },
];
