import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createValidator, type Validator } from '../../../src/validation';

let shared: Validator | undefined;

/** One validator per test file (construction loads the R4 definitions, about a second). */
export function validator(): Validator {
  shared ??= createValidator();
  return shared;
}

export const errors = (issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] =>
  issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');

/** A compact view of issues for exact assertions: [severity, code, expression, key]. */
export function summary(issues: OperationOutcomeIssue[]): [string, string, string | undefined, string | undefined][] {
  return issues.map((i) => [i.severity, i.code, i.expression?.[0], i.diagnostics]);
}

export function fixture(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(__dirname, '..', '..', 'fixtures', 'validation', path), 'utf8')) as Record<
    string,
    unknown
  >;
}

export const PRESCRIPTION = 'http://meds-fhir.example.org/fhir/StructureDefinition/meds-prescription';

/** A MedicationRequest valid against the base spec and meds-prescription; tests break one thing at a time. */
export function prescription(): Record<string, unknown> {
  return {
    resourceType: 'MedicationRequest',
    id: 'rx1',
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">rx</div>' },
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: {
      coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1010606' }],
    },
    subject: { reference: 'Patient/p1' },
    authoredOn: '2026-09-01',
    requester: { reference: 'Practitioner/d1' },
    dosageInstruction: [
      {
        timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } },
        doseAndRate: [{ doseQuantity: { value: 2, unit: 'film' } }],
      },
    ],
    dispenseRequest: {
      quantity: { value: 56, unit: 'film' },
      expectedSupplyDuration: { value: 28, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
    },
  };
}
