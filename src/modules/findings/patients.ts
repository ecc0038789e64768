import type { Db } from 'mongodb';
import type { CurrentDocument } from '../../store/documents';
import { valuePath } from '../../search/keys';
import { FINDING_KEY_SYSTEM } from './model';

const OPEN_STATUSES: Record<string, string[]> = {
  DetectedIssue: ['preliminary', 'final'],
  Task: ['requested', 'accepted', 'in-progress'],
};

/**
 * The patients the daily sweep re-evaluates: those with an active (or on-hold) prescription or an
 * active medication statement, and those with an open finding (so one whose medications all stopped
 * has it closed). Read from the indexed status of each type; only `compartments` is fetched.
 */
export async function patientsToSweep(db: Db): Promise<string[]> {
  const status = `${valuePath('status')}.c`;
  const queries: [string, Record<string, unknown>][] = [
    ['MedicationRequest', { [status]: { $in: ['active', 'on-hold'] } }],
    ['MedicationStatement', { [status]: 'active' }],
    ...Object.entries(OPEN_STATUSES).map(([type, statuses]): [string, Record<string, unknown>] => [
      type,
      { [status]: { $in: statuses }, 'resource.identifier.system': FINDING_KEY_SYSTEM },
    ]),
  ];
  const patients = new Set<string>();
  for (const [type, filter] of queries) {
    const cursor = db
      .collection<CurrentDocument>(type)
      .find({ ...filter, deleted: { $ne: true } }, { projection: { _id: 0, compartments: 1 } });
    for await (const doc of cursor) {
      for (const c of doc.compartments ?? []) if (c.startsWith('Patient/')) patients.add(c.slice('Patient/'.length));
    }
  }
  return [...patients];
}
