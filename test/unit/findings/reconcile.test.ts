import type { DetectedIssue, Task } from '@medplum/fhirtypes';
import type { DesiredFinding, PatientState } from '../../../src/modules/findings/evaluate';
import { FINDING_KEY_SYSTEM, findingId, RESOLUTION_EXTENSION, type Finding } from '../../../src/modules/findings/model';
import { reconcile } from '../../../src/modules/findings/reconcile';

const KEY = 'p1|overdue-follow-up|CarePlan/plan#activity[0].detail';
const reviewTask = (description: string): Task => ({
  resourceType: 'Task',
  id: 'review-id',
  identifier: [{ system: 'https://meds-fhir.org/fhir/CodeSystem/medication-checks', value: 'review-id' }],
  status: 'requested',
  intent: 'order',
  priority: 'routine',
  code: { coding: [{ system: 'https://meds-fhir.org/fhir/CodeSystem/medication-checks', code: 'overdue-follow-up' }] },
  description,
  for: { reference: 'Patient/p1' },
  authoredOn: '2026-06-30',
});
const desired = (description = 'Overdue: visit was due 2026-05-29'): DesiredFinding => ({
  check: 'overdue-follow-up',
  subject: 'CarePlan/plan#activity[0].detail',
  key: KEY,
  labels: [],
  finding: reviewTask(description),
});
const stored = (fields: Partial<Task>, occurrence = 1): Task => ({
  ...reviewTask('Overdue: visit was due 2026-05-29'),
  id: findingId(KEY, occurrence),
  identifier: [{ system: FINDING_KEY_SYSTEM, value: KEY }],
  meta: { versionId: '3', lastUpdated: '2026-06-30T10:00:00Z' },
  ...fields,
});
const state = (desiredFindings: DesiredFinding[] | undefined, storedFindings: Finding[]): PatientState => ({
  patientId: 'p1',
  date: '2026-07-01',
  desired: desiredFindings,
  stored: storedFindings,
  careTeam: [],
});

describe('reconcile', () => {
  it('creates one finding per key, with the key as its identifier and a derived id', () => {
    const writes = reconcile(state([desired(), desired()], []));
    expect(writes).toHaveLength(1);
    expect(writes[0].previous).toBeUndefined();
    expect(writes[0].resource).toMatchObject({
      id: findingId(KEY, 1),
      identifier: [{ system: FINDING_KEY_SYSTEM, value: KEY }],
      status: 'requested',
    });
  });

  it('writes nothing when the open finding already says what the review says', () => {
    expect(reconcile(state([desired()], [stored({})]))).toEqual([]);
  });

  it("refreshes an acknowledged finding's detail but keeps the care team's status, owner and notes", () => {
    const accepted = stored({
      status: 'accepted',
      owner: { reference: 'Practitioner/n' },
      note: [{ text: 'calling' }],
    });
    const [write] = reconcile(state([desired('Overdue: 33 days ago')], [accepted]));
    expect(write.previous).toBe(accepted);
    expect(write.resource).toMatchObject({
      status: 'accepted',
      owner: { reference: 'Practitioner/n' },
      note: [{ text: 'calling' }],
      description: 'Overdue: 33 days ago',
    });
  });

  it("keeps a DetectedIssue's mitigation (the team's acknowledgement) when its evidence is refreshed", () => {
    const issue: DetectedIssue = {
      resourceType: 'DetectedIssue',
      id: findingId('p1|late-refill|statins', 1),
      identifier: [{ system: FINDING_KEY_SYSTEM, value: 'p1|late-refill|statins' }],
      status: 'preliminary',
      detail: 'ran out 8 days ago',
      mitigation: [{ action: { text: 'called the patient' }, date: '2026-06-30' }],
    };
    const review: DetectedIssue = { ...issue, id: 'review-id', identifier: [], detail: 'ran out 9 days ago' };
    delete review.mitigation;
    const late: DesiredFinding = {
      check: 'late-refill',
      subject: 'statins',
      key: 'p1|late-refill|statins',
      labels: [],
      finding: review,
    };
    const [write] = reconcile(state([late], [issue]));
    expect(write.resource).toMatchObject({
      status: 'preliminary',
      detail: 'ran out 9 days ago',
      mitigation: issue.mitigation,
    });
  });

  it('closes an open finding that no longer holds, with the reason and date, as completed once taken up', () => {
    const [write] = reconcile(state([], [stored({ status: 'in-progress' })]));
    expect(write.resource).toMatchObject({
      status: 'completed',
      statusReason: { text: 'The problem no longer holds as of 2026-07-01' },
      extension: [{ url: RESOLUTION_EXTENSION }],
    });
    const [untouched] = reconcile(state([], [stored({})]));
    expect(untouched.resource.status).toBe('cancelled');
    const issue: DetectedIssue = {
      resourceType: 'DetectedIssue',
      id: findingId('p1|late-refill|statins', 1),
      identifier: [{ system: FINDING_KEY_SYSTEM, value: 'p1|late-refill|statins' }],
      status: 'preliminary',
    };
    expect(reconcile(state([], [issue]))[0].resource.status).toBe('cancelled');
  });

  it('does not duplicate a finding the care team closed while the problem lasts, and marks it once it is gone', () => {
    const closedByTeam = stored({ status: 'completed' });
    expect(reconcile(state([desired()], [closedByTeam]))).toEqual([]);
    const [marked] = reconcile(state([], [closedByTeam]));
    expect(marked.resource.status).toBe('completed');
    expect(marked.resource.extension?.[0].url).toBe(RESOLUTION_EXTENSION);
    // Once resolved, nothing more is written; if it comes back, a second finding is opened.
    expect(reconcile(state([], [marked.resource]))).toEqual([]);
    const [again] = reconcile(state([desired()], [marked.resource]));
    expect(again.resource.id).toBe(findingId(KEY, 2));
    expect(again.previous).toBeUndefined();
  });

  it('closes every open finding of a patient who is no longer in the record', () => {
    const [write] = reconcile(state(undefined, [stored({})]));
    expect(write.resource).toMatchObject({ status: 'cancelled' });
    expect((write.resource as Task).statusReason?.text).toMatch(/no longer in the record/);
  });
});
