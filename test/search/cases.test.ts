import type { Bundle } from '@medplum/fhirtypes';
import { MongoClient, type Db } from 'mongodb';
import { search, SearchParameterRegistry } from '../../src/search';
import { databaseNameFor } from '../support/server';
import { BASE, LOINC, load, RXNORM, UCUM } from './fixtures';

/**
 * Each case: a search and exactly the ids it must return (sorted). Dates use the spec's ranges: a
 * value stands for [start, end) of its precision, a search value too (R4 search, "date").
 */
const CASES: [type: string | undefined, query: string, ids: string[]][] = [
  // string: starts-with, case- and accent-insensitive; :exact, :contains; comma = OR; repeat = AND
  ['Patient', 'name=mul', ['pat-1']],
  ['Patient', 'name=MÜLLER', ['pat-1']],
  ['Patient', 'family=smith', ['pat-2', 'pat-3']],
  ['Patient', 'family:exact=Smith', ['pat-2']],
  ['Patient', 'family:exact=smith', []],
  ['Patient', 'family:contains=MIT', ['pat-2', 'pat-3']],
  ['Patient', 'name=smith,muller', ['pat-1', 'pat-2', 'pat-3']],
  ['Patient', 'given=anne&family=smith', ['pat-2']],
  ['Patient', 'family=smith&family=smiths', ['pat-3']],
  // token
  ['Patient', 'gender=female', ['pat-2', 'pat-3']],
  ['Patient', 'gender=|female', ['pat-2', 'pat-3']],
  ['Patient', 'identifier=urn:mrn|111', ['pat-1']],
  ['Patient', 'identifier=111', ['pat-1']],
  ['Patient', 'identifier=urn:mrn|', ['pat-1', 'pat-2']],
  ['Patient', 'identifier=urn:other|111', []],
  ['Patient', 'identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|111', ['pat-1']],
  ['Patient', 'active=true', ['pat-1']],
  ['Observation', `code=${LOINC}|2345-7`, ['obs-1', 'obs-2']],
  ['Observation', `code=${LOINC}|2345-7,urn:other|x`, ['obs-1', 'obs-2', 'obs-4']],
  ['Observation', 'code:text=glucose', ['obs-1']],
  ['Observation', 'code:text=serum', ['obs-1']],
  ['Observation', 'status:not=final', ['obs-3']],
  ['MedicationRequest', 'status=active', ['mr-1', 'mr-3']],
  ['Medication', 'code:in=http://example.org/vs/oud-meds', ['med-bup']],
  ['Medication', 'code:not-in=http://example.org/vs/oud-meds', ['med-nal']],
  // reference
  ['MedicationRequest', 'patient=Patient/pat-1', ['mr-1', 'mr-2']],
  ['MedicationRequest', 'patient=pat-1', ['mr-1', 'mr-2']],
  ['MedicationRequest', 'subject=pat-1', ['mr-1', 'mr-2']],
  ['MedicationRequest', 'subject:Patient=pat-1', ['mr-1', 'mr-2']],
  ['MedicationRequest', `patient=${BASE}/Patient/pat-1`, ['mr-1', 'mr-2']],
  ['MedicationRequest', 'patient=Patient/pat-1,Patient/pat-2', ['mr-1', 'mr-2', 'mr-3']],
  ['MedicationDispense', 'prescription=mr-1', ['md-1', 'md-2']],
  ['MedicationRequest', 'requester:identifier=urn:npi|999', ['mr-2']],
  ['MedicationRequest', 'requester:missing=false', ['mr-2']],
  ['MedicationRequest', 'requester:missing=true', ['mr-1', 'mr-3']],
  // chaining, several levels
  ['MedicationRequest', `medication.code=${RXNORM}|1010600`, ['mr-1']],
  ['MedicationRequest', 'subject:Patient.name=smith', ['mr-3']],
  ['MedicationDispense', 'prescription.patient.family=smith', ['md-3']],
  ['MedicationDispense', 'prescription.patient.organization.name=clinic', ['md-3']],
  ['MedicationRequest', 'patient.general-practitioner.name=who', []],
  // reverse chaining
  ['MedicationRequest', '_has:MedicationDispense:prescription:status=completed', ['mr-1']],
  ['Patient', '_has:MedicationRequest:patient:status=stopped', ['pat-1']],
  ['Patient', '_has:MedicationRequest:patient:_has:MedicationDispense:prescription:status=in-progress', ['pat-2']],
  // date precision: birthDate 1980-02-15 (pat-1), 1980-02 (pat-2), 1975 (pat-3)
  ['Patient', 'birthdate=1980-02', ['pat-1', 'pat-2']],
  ['Patient', 'birthdate=1980-02-15', ['pat-1']],
  ['Patient', 'birthdate=1980', ['pat-1', 'pat-2']],
  ['Patient', 'birthdate=ne1980', ['pat-3']],
  ['Patient', 'birthdate=lt1980-02-15', ['pat-2', 'pat-3']],
  ['Patient', 'birthdate=gt1980-02-15', ['pat-2']],
  ['Patient', 'birthdate=ge1980-02-15', ['pat-1', 'pat-2']],
  ['Patient', 'birthdate=le1980-02-15', ['pat-1', 'pat-2', 'pat-3']],
  ['Patient', 'birthdate=sa1979', ['pat-1', 'pat-2']],
  ['Patient', 'birthdate=eb1980', ['pat-3']],
  ['Patient', 'birthdate=ge1980-01-01&birthdate=lt1980-03-01', ['pat-1', 'pat-2']],
  // Observation: instant 2024-03-05T09:00Z, Period March, year 2024, open Period from 2024-02-15
  ['Observation', 'date=2024-03-05', ['obs-1']],
  ['Observation', 'date=2024-03', ['obs-1', 'obs-2']],
  ['Observation', 'date=2024', ['obs-1', 'obs-2', 'obs-3']],
  ['Observation', 'date=2024-03-05T10:00:00+01:00', ['obs-1']],
  ['Observation', 'date=2024-03-05T09:00Z', ['obs-1']],
  ['Observation', 'date=2024-03-05T09:00:01Z', []],
  ['Observation', 'date=ge2024-03-05', ['obs-1', 'obs-2', 'obs-3', 'obs-4']],
  ['Observation', 'date=gt2024-03-31', ['obs-3', 'obs-4']],
  ['Observation', 'date=lt2024-03-01', ['obs-3', 'obs-4']],
  ['Observation', 'date=sa2024-03-31', []],
  ['Observation', 'date=eb2024-03-01', []],
  ['Observation', 'date=ap2024-01-15', ['obs-3']],
  ['MedicationDispense', 'prescription=mr-1&whenhandedover=ge2024-03-01&whenhandedover=lt2024-04-01', ['md-1']],
  ['CarePlan', 'status=active&activity-date=lt2024-06-01', ['cp-1']],
  ['MedicationRequest', 'authoredon=2024-03', ['mr-1', 'mr-2']],
  // _lastUpdated on the document's ts (2024-05-01T00:00:00Z; mr-3 2024-06-15T12:00:00Z)
  ['MedicationRequest', '_lastUpdated=gt2024-06-01', ['mr-3']],
  ['MedicationRequest', '_lastUpdated=2024-05-01', ['mr-1', 'mr-2']],
  ['MedicationRequest', '_lastUpdated=le2024-05-01T00:00:00Z', ['mr-1', 'mr-2']],
  ['MedicationRequest', '_lastUpdated=2024-06-15T12:00:00Z', ['mr-3']],
  // number (precision of the search value: 0.3 is [0.25, 0.35))
  ['RiskAssessment', 'probability=0.25', ['ra-1']],
  ['RiskAssessment', 'probability=0.3', ['ra-1', 'ra-2']],
  ['RiskAssessment', 'probability=0.30', ['ra-2']],
  ['RiskAssessment', 'probability=gt0.26', ['ra-2']],
  // quantity, with UCUM canonical units (1 g/L = 100 mg/dL)
  ['Observation', `value-quantity=100|${UCUM}|mg/dL`, ['obs-1', 'obs-2']],
  ['Observation', `value-quantity=gt50|${UCUM}|mg/dL`, ['obs-1', 'obs-2']],
  ['Observation', `value-quantity=0.1|${UCUM}|g/dL`, ['obs-1', 'obs-2']],
  ['Observation', 'value-quantity=5.4||mmol', ['obs-4']],
  ['Observation', 'value-quantity=72', ['obs-3']],
  ['Observation', 'value-quantity=lt10', ['obs-2', 'obs-4']],
  // composite
  ['Observation', `code-value-quantity=${LOINC}|2345-7$gt90|${UCUM}|mg/dL`, ['obs-1', 'obs-2']],
  ['Observation', `code-value-quantity=${LOINC}|2345-7$lt90|${UCUM}|mg/dL`, []],
  ['Observation', `code-value-quantity=${LOINC}|8867-4$72`, ['obs-3']],
  // uri
  ['ValueSet', 'url=http://example.org/vs/oud-meds', ['vs-1']],
  ['ValueSet', 'url=http://example.org/vs', []],
  ['ValueSet', 'url:below=http://example.org/vs', ['vs-1']],
  ['ValueSet', 'url:above=http://example.org/vs/oud-meds/v2', ['vs-1']],
  // Resource-level parameters
  ['MedicationRequest', '_tag=urn:t|test', ['mr-3']],
  ['MedicationRequest', '_profile=http://x/StructureDefinition/mr', ['mr-3']],
  ['MedicationRequest', '_security=urn:sec|R', ['mr-3']],
  ['MedicationRequest', '_source=http://src/a', ['mr-3']],
  ['MedicationRequest', '_id=mr-1,mr-2', ['mr-1', 'mr-2']],
  ['MedicationRequest', '_id=mr-del', []],
  ['MedicationRequest', '', ['mr-1', 'mr-2', 'mr-3']],
  // system level
  [undefined, '_type=Patient,Medication&_id=pat-1,med-bup', ['med-bup', 'pat-1']],
  [undefined, '_type=MedicationRequest,MedicationDispense&patient=Patient/pat-2', ['md-3', 'mr-3']],
];

let client: MongoClient;
let db: Db;
const registry = new SearchParameterRegistry();
const dbName = databaseNameFor(__filename);
const options = { maxCount: 100, defaultCount: 50, pageSecret: 'test-secret', now: new Date('2024-06-01T00:00:00Z') };

beforeAll(async () => {
  client = await MongoClient.connect(process.env.MONGODB_URI as string);
  db = client.db(dbName);
  await db.dropDatabase();
  await load(db, registry);
});
afterAll(async () => {
  await db.dropDatabase();
  await client.close();
});

function matchIds(bundle: Bundle): string[] {
  return (bundle.entry ?? [])
    .filter((e) => e.search?.mode === 'match')
    .map((e) => e.resource?.id as string)
    .sort();
}

describe('search cases', () => {
  it.each(CASES)('%s?%s', async (type, query, ids) => {
    const bundle = await search(
      db,
      { resourceType: type, params: new URLSearchParams(query), baseUrl: BASE },
      registry,
      options,
    );
    expect(matchIds(bundle)).toEqual(ids);
    expect(bundle.total).toBe(ids.length);
  });
});
