import type { IndexDescription } from 'mongodb';
import { sortPath, SPAN_KEY, valuePath } from './keys';

const v = (code: string, field: string) => `${valuePath(code)}.${field}`;

/**
 * Compound indexes for the common queries of the medication set, in MongoDB's equality, sort, range
 * order. Only one field of each may be an array in a given document (MongoDB's "parallel arrays"
 * rule): patient, status, prescription and dates have one value per resource and are stored unwrapped
 * (extract.ts), so only `code` or `activity-date` may be arrays. bench/search-explain.ts prints which
 * index each benchmark query is meant to use. On the embedded engine each key path of these indexes
 * becomes a multikey side table (tools/ferretdb/patch/paths_medsfhir.go), built by the start-up
 * migration (index-migration.ts) before the first query.
 */
/** Business identifiers: every conditional create/update of an EHR or pharmacy sync looks one up. */
const IDENTIFIER: IndexDescription = { key: { [v('identifier', 'sc')]: 1 }, name: 'sp_identifier' };
/**
 * The default string search (`name=riv`: a case- and accent-insensitive prefix) is an anchored regex
 * on the normalized text `n`, which MongoDB bounds like a range and the embedded engine answers from
 * the same index (a path of several values: family and given parts).
 */
const NAME: IndexDescription = { key: { [v('name', 'n')]: 1 }, name: 'sp_name' };

const INDEXES: Record<string, IndexDescription[]> = {
  MedicationRequest: [
    IDENTIFIER,
    { key: { [v('patient', 'r')]: 1, [v('status', 'c')]: 1, _id: 1 }, name: 'sp_patient_status' },
    { key: { [v('status', 'c')]: 1, [sortPath('authoredon')]: -1, _id: -1 }, name: 'sp_status_authoredon' },
    { key: { [v('medication', 'r')]: 1 }, name: 'sp_medication' },
  ],
  MedicationDispense: [
    IDENTIFIER,
    { key: { [v('prescription', 'r')]: 1, [v('whenhandedover', 'lo')]: 1 }, name: 'sp_prescription_handedover' },
    { key: { [v('patient', 'r')]: 1, [v('whenhandedover', 'lo')]: -1 }, name: 'sp_patient_handedover' },
  ],
  MedicationStatement: [
    IDENTIFIER,
    {
      key: { [v('patient', 'r')]: 1, [v('status', 'c')]: 1, [v('effective', 'lo')]: -1 },
      name: 'sp_patient_status_effective',
    },
  ],
  MedicationAdministration: [
    { key: { [v('patient', 'r')]: 1, [v('effective-time', 'lo')]: -1 }, name: 'sp_patient_effective' },
  ],
  Observation: [
    IDENTIFIER,
    { key: { [v('code', 'sc')]: 1, [v('date', 'lo')]: 1, _id: 1 }, name: 'sp_code_date' },
    { key: { [v('patient', 'r')]: 1, [v('code', 'sc')]: 1, [v('date', 'lo')]: -1 }, name: 'sp_patient_code_date' },
  ],
  CarePlan: [
    IDENTIFIER,
    { key: { [v('status', 'c')]: 1, [v('activity-date', 'lo')]: 1 }, name: 'sp_status_activity_date' },
    { key: { [v('patient', 'r')]: 1, [v('status', 'c')]: 1 }, name: 'sp_patient_status' },
  ],
  Patient: [IDENTIFIER, NAME, { key: { [v('family', 'n')]: 1 }, name: 'sp_family' }],
  Practitioner: [IDENTIFIER, NAME],
  Organization: [IDENTIFIER, NAME],
  Medication: [{ key: { [v('code', 'sc')]: 1 }, name: 'sp_code' }],
  DetectedIssue: [
    { key: { [v('patient', 'r')]: 1, [v('identified', 'lo')]: -1 }, name: 'sp_patient_identified' },
    // The worklist (standing findings of a care team member's patients) and the daily sweep's open findings.
    { key: { [v('care-team', 'r')]: 1, [v('status', 'c')]: 1 }, name: 'sp_care_team_status' },
    { key: { [v('status', 'c')]: 1 }, name: 'sp_status' },
  ],
  Task: [
    { key: { [v('patient', 'r')]: 1, [v('status', 'c')]: 1 }, name: 'sp_patient_status' },
    { key: { [v('care-team', 'r')]: 1, [v('status', 'c')]: 1 }, name: 'sp_care_team_status' },
    { key: { [v('status', 'c')]: 1 }, name: 'sp_status' },
  ],
  Encounter: [IDENTIFIER, { key: { [v('patient', 'r')]: 1, [v('date', 'lo')]: -1 }, name: 'sp_patient_date' }],
  Appointment: [{ key: { [v('patient', 'r')]: 1, [v('date', 'lo')]: -1 }, name: 'sp_patient_date' }],
  ValueSet: [{ key: { [v('url', 'u')]: 1 }, name: 'sp_url' }],
  // A patient's accounting of disclosures: every read adds an event, so an unindexed search would scan them all.
  AuditEvent: [{ key: { [v('patient', 'r')]: 1, [v('date', 'lo')]: -1 }, name: 'sp_patient_date' }],
};

/**
 * A date search condition names both bounds of the stored range ([lo, hi)): `ge` is `hi > S or
 * lo >= S`, `eq` is `lo >= S and hi <= E` (compile/values.ts). The compound indexes lead with `lo`;
 * each date they index also gets a single-field index on `hi`, so that the other half of such a
 * condition is bounded too (MongoDB's index union for an `$or`; on the embedded engine, a side table
 * the pre-filter can use, instead of decoding every candidate of the leading equality).
 */
function upperBounds(indexes: IndexDescription[]): IndexDescription[] {
  const paths = new Set<string>();
  for (const path of indexedDatePaths(indexes)) {
    paths.add(`${path}.hi`);
    // The values longer than a day, which a date range split by compile/date-ranges.ts looks up apart.
    paths.add(`${path}.${SPAN_KEY}`);
  }
  return [...paths].map((path) => ({
    key: { [path]: 1 },
    name: `${path.replace(/^sp\./, 'sp_').replace(/\./g, '_')}`,
  }));
}

/** The date parameters' paths (`sp.<code>`) whose start `lo` leads or ends one of the indexes. */
function indexedDatePaths(indexes: IndexDescription[]): string[] {
  const paths = new Set<string>();
  for (const index of indexes) {
    for (const key of Object.keys(index.key)) {
      if (key.startsWith('sp.') && key.endsWith('.lo')) paths.add(key.slice(0, -3));
    }
  }
  return [...paths];
}

/** The value paths (`sp.<code>`) of `type`'s date parameters whose bounds are indexed. */
export function indexedDateValuePaths(type: string): string[] {
  return indexedDatePaths(INDEXES[type] ?? []);
}

/** MongoDB index specifications for `type`'s collection (empty for types outside the medication set). */
export function searchIndexes(type: string): IndexDescription[] {
  const indexes = INDEXES[type] ?? [];
  return [...indexes, ...upperBounds(indexes)];
}

/** The types that have search indexes, for creating them at start-up. */
export function indexedTypes(): string[] {
  return Object.keys(INDEXES);
}
