import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Patient, Resource } from '@medplum/fhirtypes';
import { loadChecks, loadMedicationClasses, reviewPatient } from '../../../src/checks';

/**
 * The example patients (test/fixtures/checks/scenarios/<name>.resources.json, plain resource lists) and
 * what the review must say about each (<name>.expected.json).
 */
const DIR = path.join(__dirname, '../../fixtures/checks/scenarios');
const classes = loadMedicationClasses();
const checks = loadChecks();

interface Expected {
  scenario: string;
  review: { date: string; periodStart: string; periodEnd: string };
  expected: {
    adherence: Record<string, string | number | boolean>[];
    findings: { code: string; resourceType: string; text: string }[];
  };
}

const names = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.expected.json'))
  .map((f) => f.replace('.expected.json', ''));

test('the five example scenarios are present', () => {
  expect(names.sort()).toEqual(['late-refill', 'low-pdc', 'missed-follow-up', 'on-track', 'opioid-benzodiazepine']);
});

describe.each(names)('scenario %s', (name) => {
  const resources = JSON.parse(fs.readFileSync(path.join(DIR, `${name}.resources.json`), 'utf8')) as Resource[];
  const spec = JSON.parse(fs.readFileSync(path.join(DIR, `${name}.expected.json`), 'utf8')) as Expected;
  const patient = resources.find((r): r is Patient => r.resourceType === 'Patient')!;

  test('every resource belongs to the patient', () => {
    for (const r of resources) {
      if (r.resourceType === 'Patient') continue;
      expect((r as { subject?: { reference?: string } }).subject?.reference).toBe(`Patient/${patient.id}`);
    }
  });

  test('the review says what the scenario expects', () => {
    const out = reviewPatient({ patient, resources, ...spec.review }, classes, checks);
    const adherence = (out.parameter ?? [])
      .filter((p) => p.name === 'adherence')
      .map((p) =>
        Object.fromEntries(
          (p.part ?? []).map((x) => [
            x.name,
            x.valueCoding?.code ?? x.valueDate ?? x.valueInteger ?? x.valueDecimal ?? x.valueBoolean,
          ]),
        ),
      );
    expect(adherence).toEqual(spec.expected.adherence);
    const findings = (out.parameter ?? [])
      .filter((p) => p.name === 'finding')
      .map((p) => {
        const r = p.resource as {
          resourceType: string;
          code?: { coding?: { code?: string }[] };
          detail?: string;
          description?: string;
        };
        return { code: r.code?.coding?.[0]?.code, resourceType: r.resourceType, text: r.detail ?? r.description };
      });
    expect(findings).toEqual(spec.expected.findings);
  });
});
