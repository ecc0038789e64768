import type { DetectedIssue, Resource } from '@medplum/fhirtypes';
import {
  CheckEvaluationError,
  CHECKS_SYSTEM,
  MEDICATION_CLASS_SYSTEM,
  ReviewInputError,
  defaultPeriod,
  loadChecks,
  loadMedicationClasses,
  reviewPatient,
} from '../../../src/checks';
import { MEDS, dispense, fills, patient, request } from '../../fixtures/checks/builders';

const classes = loadMedicationClasses();
const checks = loadChecks();

describe('$medication-review Parameters', () => {
  const resources: Resource[] = [
    request('rx', MEDS.metformin, '2026-01-05'),
    ...fills('d', MEDS.metformin, '2026-01-05', 6, 30, 30),
  ];

  test('one adherence parameter per tracked class filled in the period, with the issue’s parts', () => {
    const out = reviewPatient({ patient: patient(), resources, date: '2026-06-30' }, classes, checks);
    expect(out.resourceType).toBe('Parameters');
    const adherence = out.parameter!.filter((p) => p.name === 'adherence');
    expect(adherence).toHaveLength(1);
    const parts = adherence[0].part ?? [];
    expect(parts.filter((p) => p.name !== 'supply' && p.name !== 'gap')).toEqual([
      {
        name: 'medicationClass',
        valueCoding: {
          system: MEDICATION_CLASS_SYSTEM,
          code: 'diabetes-non-insulin',
          display: 'Non-insulin diabetes medications',
        },
      },
      { name: 'periodStart', valueDate: '2026-01-05' },
      { name: 'periodEnd', valueDate: '2026-06-30' },
      { name: 'daysInPeriod', valueInteger: 177 },
      { name: 'daysCovered', valueInteger: 177 },
      { name: 'pdc', valueDecimal: 1 },
      { name: 'adherent', valueBoolean: true },
      { name: 'lastCoveredDay', valueDate: '2026-07-03' },
      { name: 'eligible', valueBoolean: true },
    ]);
    // Six contiguous 30-day fills: six supplies, the first from its fill day, and no gap.
    const supplies = parts.filter((p) => p.name === 'supply');
    expect(supplies).toHaveLength(6);
    expect(supplies[0].part).toEqual([
      { name: 'reference', valueReference: { reference: expect.stringMatching(/^MedicationDispense\//) } },
      { name: 'fillDate', valueDate: '2026-01-05' },
      { name: 'start', valueDate: '2026-01-05' },
      { name: 'end', valueDate: '2026-02-03' },
    ]);
    expect(parts.filter((p) => p.name === 'gap')).toEqual([]);
    expect(out.parameter!.filter((p) => p.name === 'finding')).toHaveLength(0);
  });

  test('the default period is the 180 days ending at the review date', () => {
    expect(defaultPeriod('2026-06-30')).toEqual({ periodStart: '2026-01-02', periodEnd: '2026-06-30' });
    const out = reviewPatient({ patient: patient(), resources, date: '2026-06-30' }, classes, checks);
    expect(out.parameter![0].part!.find((p) => p.name === 'periodEnd')?.valueDate).toBe('2026-06-30');
  });

  test('an explicit period and a review date in the past ignore later fills', () => {
    const out = reviewPatient(
      { patient: patient(), resources, date: '2026-03-01', periodStart: '2026-01-01', periodEnd: '2026-03-01' },
      classes,
      checks,
    );
    const parts = out.parameter![0].part!;
    expect(parts.find((p) => p.name === 'daysInPeriod')?.valueInteger).toBe(56);
    expect(parts.find((p) => p.name === 'lastCoveredDay')?.valueDate).toBe('2026-03-05');
  });

  test('a prescription standing in for dispenses is flagged', () => {
    const rx = request('rx2', MEDS.atorvastatin, '2026-03-01', {
      dispenseRequest: {
        validityPeriod: { start: '2026-03-01' },
        expectedSupplyDuration: { value: 90, code: 'd' },
        numberOfRepeatsAllowed: 1,
      },
    });
    const out = reviewPatient({ patient: patient(), resources: [rx], date: '2026-06-30' }, classes, checks);
    const statins = out.parameter!.find((p) => p.part?.[0].valueCoding?.code === 'statins')!;
    expect(statins.part!.find((p) => p.name === 'prescriptionBased')?.valueBoolean).toBe(true);
  });

  test('invalid dates are rejected with ReviewInputError (HTTP 400)', () => {
    const run = (date: string, periodStart?: string, periodEnd?: string) => () =>
      reviewPatient({ patient: patient(), resources, date, periodStart, periodEnd }, classes, checks);
    expect(run('2026-02-30')).toThrow(ReviewInputError);
    expect(run('yesterday')).toThrow(ReviewInputError);
    expect(run('2026-06-30', '2026-07-01', '2026-06-01')).toThrow(/before/);
  });

  test('findings carry the check code, the patient, a detail and the evidence', () => {
    const out = reviewPatient(
      {
        patient: patient(),
        resources: [request('o', MEDS.oxycodone5, '2026-06-01'), dispense('b', MEDS.alprazolam05, '2026-06-20', 30)],
        date: '2026-06-30',
      },
      classes,
      checks,
    );
    const issue = out.parameter!.find((p) => p.name === 'finding')!.resource as DetectedIssue;
    expect(issue).toMatchObject({
      resourceType: 'DetectedIssue',
      status: 'preliminary',
      code: { coding: [{ system: CHECKS_SYSTEM, code: 'opioid-benzodiazepine' }] },
      patient: { reference: 'Patient/p1' },
      identifiedDateTime: '2026-06-30',
      severity: 'high',
      evidence: [{ detail: [{ reference: 'MedicationRequest/o' }, { reference: 'MedicationDispense/b' }] }],
    });
    expect(issue.detail).toMatch(/opioid and a benzodiazepine/);
    expect(issue.identifier?.[0]).toEqual({ system: CHECKS_SYSTEM, value: issue.id });
  });

  test('a runtime check that fails while evaluating names itself', () => {
    const broken = loadChecks();
    broken.add({
      resourceType: 'PlanDefinition',
      status: 'active',
      action: [
        {
          code: [{ coding: [{ system: CHECKS_SYSTEM, code: 'broken' }] }],
          condition: [
            {
              kind: 'applicability',
              expression: { language: 'text/fhirpath', expression: "isActive('no-such-class')" },
            },
          ],
          output: [{ type: 'DetectedIssue' }],
        },
      ],
    });
    expect(() => reviewPatient({ patient: patient(), resources, date: '2026-06-30' }, classes, broken)).toThrow(
      CheckEvaluationError,
    );
    expect(() => reviewPatient({ patient: patient(), resources, date: '2026-06-30' }, classes, broken)).toThrow(
      /broken.*no-such-class/,
    );
  });
});
