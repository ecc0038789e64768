import type { Resource } from '@medplum/fhirtypes';
import type { Express } from 'express';
import type { JWTPayload } from 'jose';
import { ACT_CODE } from '../../src/auth/labels';
import { putAll } from '../support/server';
import { tokenFor } from '../support/tokens';

/**
 * The access-control world the auth tests share: two patients, each with an ordinary and a
 * 42 CFR Part 2-labelled prescription, one Medication, care teams and a Consent.
 */
export const PART2_LABEL = { system: ACT_CODE, code: '42CFRPart2' };
export const BUPRENORPHINE = { system: 'http://www.whocc.no/atc', code: 'N07BC01', display: 'buprenorphine' };
export const METFORMIN = { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '861007' };
export const IDENTIFIER_SYSTEM = 'https://meds-fhir.test/rx';

export type RecordKey = 'P1' | 'P2' | 'mrP1' | 'mrP1x' | 'mrP2' | 'mrP2x' | 'med';
export const RECORDS: Record<RecordKey, { type: string; id: string }> = {
  P1: { type: 'Patient', id: 'acc-p1' },
  P2: { type: 'Patient', id: 'acc-p2' },
  mrP1: { type: 'MedicationRequest', id: 'acc-mr-p1' },
  mrP1x: { type: 'MedicationRequest', id: 'acc-mr-p1-part2' },
  mrP2: { type: 'MedicationRequest', id: 'acc-mr-p2' },
  mrP2x: { type: 'MedicationRequest', id: 'acc-mr-p2-part2' },
  med: { type: 'Medication', id: 'acc-med' },
};
export const RECORD_KEYS = Object.keys(RECORDS) as RecordKey[];

function prescription(key: RecordKey, patient: string, part2: boolean): Resource {
  const { id } = RECORDS[key];
  return {
    resourceType: 'MedicationRequest',
    id,
    ...(part2 ? { meta: { security: [PART2_LABEL] } } : {}),
    identifier: [{ system: IDENTIFIER_SYSTEM, value: id }],
    status: 'active',
    intent: 'order',
    medicationReference: { reference: 'Medication/acc-med' },
    subject: { reference: `Patient/${patient}` },
    authoredOn: '2026-10-01',
    dosageInstruction: [{ text: 'as directed' }],
    dispenseRequest: {
      expectedSupplyDuration: { value: 30, unit: 'd', system: 'http://unitsofmeasure.org', code: 'd' },
    },
    note: [{ text: part2 ? 'buprenorphine program' : 'ordinary' }],
  } as Resource;
}

/** A fill of a prescription, labelled as its prescription is (a Part 2 program's pharmacy labels them). */
function fill(key: RecordKey, patient: string, part2: boolean): Resource {
  return {
    resourceType: 'MedicationDispense',
    id: `${RECORDS[key].id}-fill`,
    ...(part2 ? { meta: { security: [PART2_LABEL] } } : {}),
    status: 'completed',
    medicationReference: { reference: 'Medication/acc-med' },
    subject: { reference: `Patient/${patient}` },
    authorizingPrescription: [{ reference: `MedicationRequest/${RECORDS[key].id}` }],
    whenHandedOver: '2026-10-01',
    daysSupply: { value: 30, unit: 'day', system: 'http://unitsofmeasure.org', code: 'd' },
  } as Resource;
}

export function worldResources(): Resource[] {
  return [
    { resourceType: 'Patient', id: 'acc-p1', name: [{ family: 'Matrix', given: ['One'] }], birthDate: '1980-01-01' },
    { resourceType: 'Patient', id: 'acc-p2', name: [{ family: 'Matrix', given: ['Two'] }], birthDate: '1981-01-01' },
    { resourceType: 'Practitioner', id: 'acc-d1', name: [{ family: 'Teammate' }] },
    { resourceType: 'Practitioner', id: 'acc-d2', name: [{ family: 'Outsider' }] },
    { resourceType: 'Practitioner', id: 'acc-d3', name: [{ family: 'Consented' }] },
    { resourceType: 'Medication', id: 'acc-med', code: { coding: [BUPRENORPHINE] } },
    prescription('mrP1', 'acc-p1', false),
    prescription('mrP1x', 'acc-p1', true),
    prescription('mrP2', 'acc-p2', false),
    prescription('mrP2x', 'acc-p2', true),
    fill('mrP1', 'acc-p1', false),
    fill('mrP1x', 'acc-p1', true),
    fill('mrP2', 'acc-p2', false),
    fill('mrP2x', 'acc-p2', true),
    {
      resourceType: 'CareTeam',
      id: 'acc-team-p1',
      status: 'active',
      subject: { reference: 'Patient/acc-p1' },
      participant: [{ member: { reference: 'Practitioner/acc-d1' } }, { member: { reference: 'Practitioner/acc-d3' } }],
    },
    {
      resourceType: 'Consent',
      id: 'acc-consent-p1-d3',
      status: 'active',
      scope: {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }],
      },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { reference: 'Patient/acc-p1' },
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
      provision: {
        type: 'permit',
        actor: [
          {
            role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] },
            reference: { reference: 'Practitioner/acc-d3' },
          },
        ],
        securityLabel: [PART2_LABEL],
      },
    },
  ] as Resource[];
}

/** Stores the world in one transaction, as an administrator. */
export async function loadWorld(app: Express): Promise<void> {
  await putAll(
    app,
    worldResources().map((resource) => JSON.parse(JSON.stringify(resource)) as Resource),
  );
}

export interface Persona {
  name: string;
  /** undefined: no Authorization header at all. */
  claims?: JWTPayload;
  /** The records the persona sees; an empty set with status 401 for those refused at the door. */
  sees: RecordKey[];
  /** 401 for every path (no token, expired token). */
  refused?: boolean;
}

const past = () => Math.floor(Date.now() / 1000) - 600;

export const PERSONAS: Persona[] = [
  { name: 'no token', sees: [], refused: true },
  {
    name: 'expired token',
    claims: { scope: 'system/*.rs', clearance: ['*'], exp: past(), iat: past() - 60 },
    sees: [],
    refused: true,
  },
  { name: 'patient P1', claims: { scope: 'patient/*.rs', patient: 'acc-p1' }, sees: ['P1', 'mrP1', 'mrP1x', 'med'] },
  { name: 'patient P2', claims: { scope: 'patient/*.rs', patient: 'acc-p2' }, sees: ['P2', 'mrP2', 'mrP2x', 'med'] },
  {
    name: "practitioner on P1's care team",
    claims: { scope: 'user/*.rs', fhirUser: 'Practitioner/acc-d1' },
    sees: ['P1', 'mrP1', 'med'],
  },
  {
    name: 'practitioner on no care team',
    claims: { scope: 'user/*.rs', fhirUser: 'Practitioner/acc-d2' },
    sees: ['med'],
  },
  {
    name: 'practitioner with a Consent from P1',
    claims: { scope: 'user/*.rs', fhirUser: 'Practitioner/acc-d3' },
    sees: ['P1', 'mrP1', 'mrP1x', 'med'],
  },
  { name: 'cleared system client', claims: { scope: 'system/*.rs', clearance: ['*'] }, sees: RECORD_KEYS },
  { name: 'uncleared system client', claims: { scope: 'system/*.rs' }, sees: ['P1', 'P2', 'mrP1', 'mrP2', 'med'] },
  {
    name: 'v1-scoped app',
    claims: { scope: 'patient/*.read launch/patient', patient: 'acc-p1' },
    sees: ['P1', 'mrP1', 'mrP1x', 'med'],
  },
];

export async function authorizationOf(persona: Persona): Promise<string | undefined> {
  if (!persona.claims) return undefined;
  return `Bearer ${await tokenFor({ sub: persona.name, ...persona.claims })}`;
}
