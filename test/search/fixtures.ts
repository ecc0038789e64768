import type { Resource } from '@medplum/fhirtypes';
import type { Db } from 'mongodb';
import { extractSearchIndex, SearchParameterRegistry } from '../../src/search';
import type { CurrentDocument } from '../../src/store/documents';

export const BASE = 'http://test/fhir';
export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';

/** A resource with the document fields the store would set; `ts` defaults to 2024-05-01. */
export interface Fixture {
  resource: Resource;
  ts?: string;
  deleted?: boolean;
}

const ref = (reference: string) => ({ reference });

export const FIXTURES: Fixture[] = [
  { resource: { resourceType: 'Organization', id: 'org-1', name: 'Clinic Alpha' } },
  { resource: { resourceType: 'Practitioner', id: 'dr-1', name: [{ family: 'Who' }] } },
  {
    resource: {
      resourceType: 'Patient',
      id: 'pat-1',
      active: true,
      gender: 'male',
      name: [{ family: 'Müller', given: ['Jörg'] }],
      birthDate: '1980-02-15',
      identifier: [
        {
          system: 'urn:mrn',
          value: '111',
          type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
        },
      ],
    },
  },
  {
    resource: {
      resourceType: 'Patient',
      id: 'pat-2',
      gender: 'female',
      name: [{ family: 'Smith', given: ['Anne'] }],
      birthDate: '1980-02',
      identifier: [{ system: 'urn:mrn', value: '222' }],
      managingOrganization: ref('Organization/org-1'),
    },
  },
  {
    resource: {
      resourceType: 'Patient',
      id: 'pat-3',
      gender: 'female',
      name: [{ family: 'Smithson', given: ['Bea'] }],
      birthDate: '1975',
      generalPractitioner: [ref('Practitioner/dr-1')],
    },
  },
  {
    resource: {
      resourceType: 'Medication',
      id: 'med-bup',
      code: { coding: [{ system: RXNORM, code: '1010600', display: 'Buprenorphine' }] },
    },
  },
  {
    resource: {
      resourceType: 'Medication',
      id: 'med-nal',
      code: { coding: [{ system: RXNORM, code: '1483744', display: 'Naltrexone' }] },
    },
  },
  {
    resource: {
      resourceType: 'MedicationRequest',
      id: 'mr-1',
      status: 'active',
      intent: 'order',
      subject: ref('Patient/pat-1'),
      medicationReference: ref('Medication/med-bup'),
      authoredOn: '2024-03-05',
      identifier: [{ system: 'urn:rx', value: 'R1' }],
    },
  },
  {
    resource: {
      resourceType: 'MedicationRequest',
      id: 'mr-2',
      status: 'stopped',
      intent: 'order',
      subject: ref('Patient/pat-1'),
      medicationReference: ref('Medication/med-nal'),
      authoredOn: '2024-03-20T10:00:00Z',
      requester: { identifier: { system: 'urn:npi', value: '999' } },
    },
  },
  {
    ts: '2024-06-15T12:00:00Z',
    resource: {
      resourceType: 'MedicationRequest',
      id: 'mr-3',
      status: 'active',
      intent: 'order',
      subject: ref('Patient/pat-2'),
      medicationReference: ref('Medication/med-nal'),
      authoredOn: '2024-04-01',
      meta: {
        tag: [{ system: 'urn:t', code: 'test' }],
        profile: ['http://x/StructureDefinition/mr'],
        security: [{ system: 'urn:sec', code: 'R' }],
        source: 'http://src/a',
      },
    },
  },
  {
    deleted: true,
    resource: {
      resourceType: 'MedicationRequest',
      id: 'mr-del',
      status: 'active',
      intent: 'order',
      subject: ref('Patient/pat-1'),
      medicationReference: ref('Medication/med-bup'),
    },
  },
  {
    resource: {
      resourceType: 'MedicationDispense',
      id: 'md-1',
      status: 'completed',
      subject: ref('Patient/pat-1'),
      authorizingPrescription: [ref('MedicationRequest/mr-1')],
      medicationReference: ref('Medication/med-bup'),
      whenHandedOver: '2024-03-06T09:00:00Z',
    },
  },
  {
    resource: {
      resourceType: 'MedicationDispense',
      id: 'md-2',
      status: 'completed',
      subject: ref('Patient/pat-1'),
      authorizingPrescription: [ref('MedicationRequest/mr-1')],
      medicationReference: ref('Medication/med-bup'),
      whenHandedOver: '2024-04-05',
    },
  },
  {
    resource: {
      resourceType: 'MedicationDispense',
      id: 'md-3',
      status: 'in-progress',
      subject: ref('Patient/pat-2'),
      authorizingPrescription: [ref('MedicationRequest/mr-3')],
      medicationReference: ref('Medication/med-nal'),
      whenHandedOver: '2024-04-02',
    },
  },
  {
    resource: {
      resourceType: 'Observation',
      id: 'obs-1',
      status: 'final',
      code: { coding: [{ system: LOINC, code: '2345-7' }], text: 'Glucose Sérum' },
      subject: ref('Patient/pat-1'),
      effectiveDateTime: '2024-03-05T10:00:00+01:00',
      valueQuantity: { value: 100, unit: 'mg/dL', system: UCUM, code: 'mg/dL' },
    },
  },
  {
    resource: {
      resourceType: 'Observation',
      id: 'obs-2',
      status: 'final',
      code: { coding: [{ system: LOINC, code: '2345-7' }] },
      subject: ref('Patient/pat-1'),
      effectivePeriod: { start: '2024-03-01', end: '2024-03-31' },
      valueQuantity: { value: 1, unit: 'g/L', system: UCUM, code: 'g/L' },
    },
  },
  {
    resource: {
      resourceType: 'Observation',
      id: 'obs-3',
      status: 'preliminary',
      code: { coding: [{ system: LOINC, code: '8867-4' }] },
      subject: ref('Patient/pat-2'),
      effectiveDateTime: '2024',
      valueQuantity: { value: 72 },
    },
  },
  {
    resource: {
      resourceType: 'Observation',
      id: 'obs-4',
      status: 'final',
      code: { coding: [{ system: 'urn:other', code: 'x' }] },
      subject: ref('Patient/pat-2'),
      effectivePeriod: { start: '2024-02-15' },
      valueQuantity: { value: 5.4, unit: 'mmol' },
    },
  },
  {
    resource: {
      resourceType: 'CarePlan',
      id: 'cp-1',
      status: 'active',
      intent: 'plan',
      subject: ref('Patient/pat-1'),
      activity: [{ detail: { status: 'scheduled', scheduledPeriod: { start: '2024-01-10', end: '2024-01-20' } } }],
    },
  },
  {
    resource: {
      resourceType: 'CarePlan',
      id: 'cp-2',
      status: 'active',
      intent: 'plan',
      subject: ref('Patient/pat-2'),
      activity: [{ detail: { status: 'scheduled', scheduledTiming: { event: ['2099-01-01'] } } }],
    },
  },
  {
    resource: {
      resourceType: 'CarePlan',
      id: 'cp-3',
      status: 'completed',
      intent: 'plan',
      subject: ref('Patient/pat-1'),
      activity: [{ detail: { status: 'completed', scheduledString: 'weekly' } }],
    },
  },
  {
    resource: {
      resourceType: 'RiskAssessment',
      id: 'ra-1',
      status: 'final',
      subject: ref('Patient/pat-1'),
      prediction: [{ probabilityDecimal: 0.25 }],
    },
  },
  {
    resource: {
      resourceType: 'RiskAssessment',
      id: 'ra-2',
      status: 'final',
      subject: ref('Patient/pat-2'),
      prediction: [{ probabilityDecimal: 0.3 }],
    },
  },
  {
    resource: {
      resourceType: 'ValueSet',
      id: 'vs-1',
      status: 'active',
      url: 'http://example.org/vs/oud-meds',
      compose: { include: [{ system: RXNORM, concept: [{ code: '1010600' }] }] },
    },
  },
];

/** The document the store writes for a version (src/store/documents.ts), built the same way. */
export function documentOf(fixture: Fixture, registry: SearchParameterRegistry): CurrentDocument {
  const ts = new Date(fixture.ts ?? '2024-05-01T00:00:00Z');
  const resource = {
    ...fixture.resource,
    meta: { ...fixture.resource.meta, versionId: '1', lastUpdated: ts.toISOString() },
  } as Resource;
  const doc: CurrentDocument = {
    _id: resource.id as string,
    v: 1,
    ts,
    resource,
    sp: extractSearchIndex(resource, registry),
  };
  if (fixture.deleted) doc.deleted = true;
  return doc;
}

export async function load(db: Db, registry: SearchParameterRegistry, fixtures: Fixture[] = FIXTURES): Promise<void> {
  const byType = new Map<string, CurrentDocument[]>();
  for (const fixture of fixtures) {
    const type = fixture.resource.resourceType;
    byType.set(type, [...(byType.get(type) ?? []), documentOf(fixture, registry)]);
  }
  for (const [type, docs] of byType) await db.collection<CurrentDocument>(type).insertMany(docs);
}
