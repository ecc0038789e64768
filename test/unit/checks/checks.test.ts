import type { DetectedIssue, PlanDefinition, Resource, Task } from '@medplum/fhirtypes';
import {
  CHECKS_SYSTEM,
  CheckDefinitionError,
  type ReviewConfig,
  loadChecks,
  loadMedicationClasses,
  reviewPatient,
} from '../../../src/checks';
import {
  MEDS,
  UDS_BUPRENORPHINE,
  carePlan,
  daily,
  dispense,
  encounter,
  fills,
  observation,
  patient,
  request,
  statement,
} from '../../fixtures/checks/builders';

const classes = loadMedicationClasses();
const DATE = '2026-06-30';

type Finding = DetectedIssue | Task;

function findings(resources: Resource[], config: ReviewConfig = {}, checks = loadChecks()): Finding[] {
  const out = reviewPatient({ patient: patient(), resources, date: DATE }, classes, checks, config);
  return (out.parameter ?? []).filter((p) => p.name === 'finding').map((p) => p.resource as Finding);
}
const codeOf = (f: Finding): string | undefined => f.code?.coding?.find((c) => c.system === CHECKS_SYSTEM)?.code;
const only = (fs: Finding[], code: string): Finding[] => fs.filter((f) => codeOf(f) === code);
const textOf = (f: Finding): string => (f.resourceType === 'DetectedIssue' ? f.detail : f.description) ?? '';
const refsOf = (f: Finding): string[] =>
  f.resourceType === 'DetectedIssue'
    ? (f.evidence?.flatMap((e) => e.detail ?? []).map((r) => r.reference ?? '') ?? [])
    : (f.input?.map((i) => i.valueReference?.reference ?? '') ?? []);

describe('pdc-below-threshold', () => {
  test('fires when refills come late and the PDC falls below 80%', () => {
    const fs = only(
      findings([
        request('rx', MEDS.atorvastatin, '2026-01-10'),
        ...fills('d', MEDS.atorvastatin, '2026-01-10', 4, 45, 30),
      ]),
      'pdc-below-threshold',
    );
    expect(fs).toHaveLength(1);
    expect(fs[0].resourceType).toBe('DetectedIssue');
    expect(textOf(fs[0])).toMatch(/^Statins: proportion of days covered 7\d% /);
    expect(refsOf(fs[0])).toContain('MedicationDispense/d-4');
  });
  test('does not fire for regular refills, or with a single fill (not eligible)', () => {
    expect(
      only(
        findings([
          request('rx', MEDS.atorvastatin, '2026-01-10'),
          ...fills('d', MEDS.atorvastatin, '2026-01-10', 6, 30, 30),
        ]),
        'pdc-below-threshold',
      ),
    ).toHaveLength(0);
    expect(only(findings([dispense('d', MEDS.atorvastatin, '2026-03-01', 30)]), 'pdc-below-threshold')).toHaveLength(0);
  });
});

describe('late-refill', () => {
  const bup = request('rx', MEDS.buprenorphineNaloxone8, '2026-04-22', { dosageInstruction: [daily(2)] });
  test('fires when the last covered day plus 7 days is before the review date', () => {
    const fs = only(
      findings([
        bup,
        dispense('d1', MEDS.buprenorphineNaloxone8, '2026-04-22', 28),
        dispense('d2', MEDS.buprenorphineNaloxone8, '2026-05-20', 28),
      ]),
      'late-refill',
    );
    expect(fs).toHaveLength(1);
    expect((fs[0] as DetectedIssue).severity).toBe('high');
    expect(textOf(fs[0])).toBe(
      'Buprenorphine: supply ran out on 2026-06-16, 14 days before the review, with no refill (grace 7 days).',
    );
    expect(refsOf(fs[0])).toEqual(['MedicationDispense/d1', 'MedicationDispense/d2', 'MedicationRequest/rx']);
  });
  test('does not fire within the grace period, with a longer per-class grace, or once the prescription is stopped', () => {
    const d = dispense('d1', MEDS.buprenorphineNaloxone8, '2026-05-29', 28); // covered to 2026-06-25
    expect(only(findings([bup, d]), 'late-refill')).toHaveLength(0);
    const late = dispense('d1', MEDS.buprenorphineNaloxone8, '2026-05-20', 28);
    expect(only(findings([bup, late], { refillGraceDays: { buprenorphine: 20 } }), 'late-refill')).toHaveLength(0);
    expect(only(findings([{ ...bup, status: 'stopped' }, late]), 'late-refill')).toHaveLength(0);
  });
});

describe('missed-doses', () => {
  const rx = request('rx', MEDS.sertraline, '2026-03-01');
  test('fires for a not-taken statement of an active medication in the last 14 days', () => {
    const fs = only(findings([rx, statement('ms', MEDS.sertraline, '2026-06-25', 'not-taken')]), 'missed-doses');
    expect(fs).toHaveLength(1);
    expect(textOf(fs[0])).toBe('Reported not taken on 2026-06-25: sertraline 50 MG Oral Tablet.');
    expect(refsOf(fs[0])).toEqual(['MedicationStatement/ms']);
  });
  test('does not fire when older than the lookback, for a medication no longer prescribed, or when taken', () => {
    expect(
      only(findings([rx, statement('ms', MEDS.sertraline, '2026-06-01', 'not-taken')]), 'missed-doses'),
    ).toHaveLength(0);
    expect(
      only(
        findings([{ ...rx, status: 'completed' }, statement('ms', MEDS.sertraline, '2026-06-25', 'not-taken')]),
        'missed-doses',
      ),
    ).toHaveLength(0);
    expect(only(findings([rx, statement('ms', MEDS.sertraline, '2026-06-25', 'active')]), 'missed-doses')).toHaveLength(
      0,
    );
  });
  test('the lookback is a parameter of the check', () => {
    const fs = findings([rx, statement('ms', MEDS.sertraline, '2026-06-01', 'not-taken')], {
      parameters: { 'missed-doses': { lookbackDays: 40 } },
    });
    expect(only(fs, 'missed-doses')).toHaveLength(1);
  });
});

describe('overdue-follow-up', () => {
  test('fires (a Task focused on the CarePlan) for a scheduled activity whose time has passed', () => {
    const fs = only(
      findings([carePlan('cp', [{ description: 'Counselling session', status: 'scheduled', due: '2026-06-10' }])]),
      'overdue-follow-up',
    );
    expect(fs).toHaveLength(1);
    const task = fs[0] as Task;
    expect(task.resourceType).toBe('Task');
    expect(task.focus?.reference).toBe('CarePlan/cp');
    expect(task.for?.reference).toBe('Patient/p1');
    expect(task.priority).toBe('urgent');
    expect(task.description).toBe(
      'Overdue: Counselling session was due 2026-06-10 (20 days ago) and is still scheduled.',
    );
  });
  test('does not fire for future, completed or inactive-plan activities', () => {
    expect(
      only(
        findings([carePlan('cp', [{ description: 'Visit', status: 'scheduled', due: '2026-07-10' }])]),
        'overdue-follow-up',
      ),
    ).toHaveLength(0);
    expect(
      only(
        findings([carePlan('cp', [{ description: 'Visit', status: 'completed', due: '2026-06-10' }])]),
        'overdue-follow-up',
      ),
    ).toHaveLength(0);
    const done = {
      ...carePlan('cp', [{ description: 'Visit', status: 'not-started', due: '2026-06-10' }]),
      status: 'completed' as const,
    };
    expect(only(findings([done]), 'overdue-follow-up')).toHaveLength(0);
  });
});

describe('new-start-no-follow-up', () => {
  const start = (day: string) => [
    request('rx', MEDS.buprenorphineNaloxone8, day),
    dispense('d1', MEDS.buprenorphineNaloxone8, day, 7),
  ];
  test('fires after a buprenorphine start with no finished visit within 7 days', () => {
    const fs = only(
      findings([...start('2026-06-01'), encounter('e-planned', '2026-06-05', 'planned')]),
      'new-start-no-follow-up',
    );
    expect(fs).toHaveLength(1);
    expect(textOf(fs[0])).toBe(
      'New start of Buprenorphine on 2026-06-01 with no completed follow-up visit within 7 days (by 2026-06-08).',
    );
    expect((fs[0] as Task).focus?.reference).toBe('MedicationDispense/d1');
  });
  test('does not fire with a finished visit in the window, inside the window, or for a continuing patient', () => {
    expect(
      only(findings([...start('2026-06-01'), encounter('e', '2026-06-05')]), 'new-start-no-follow-up'),
    ).toHaveLength(0);
    expect(only(findings(start('2026-06-27')), 'new-start-no-follow-up')).toHaveLength(0);
    const continuing = [...start('2026-06-01'), dispense('d0', MEDS.buprenorphineNaloxone8, '2026-04-01', 30)];
    expect(only(findings([...continuing, encounter('e0', '2026-04-03')]), 'new-start-no-follow-up')).toHaveLength(0);
  });
  test('antidepressants use a 30-day window', () => {
    const sertraline = [
      request('rx', MEDS.sertraline, '2026-05-15'),
      dispense('d1', MEDS.sertraline, '2026-05-15', 30),
    ];
    expect(only(findings([...sertraline, encounter('e', '2026-06-10')]), 'new-start-no-follow-up')).toHaveLength(0);
    expect(only(findings([...sertraline, encounter('e', '2026-06-20')]), 'new-start-no-follow-up')).toHaveLength(1);
  });
});

describe('monitoring-gap-uds', () => {
  const bup = [
    request('rx', MEDS.buprenorphineNaloxone8, '2026-06-10'),
    dispense('d1', MEDS.buprenorphineNaloxone8, '2026-06-10', 28),
  ];
  test('fires on buprenorphine or methadone with no urine drug screen in 30 days', () => {
    const fs = only(findings([...bup, observation('uds', UDS_BUPRENORPHINE, '2026-05-01')]), 'monitoring-gap-uds');
    expect(fs).toHaveLength(1);
    expect(fs[0].resourceType).toBe('Task');
    expect(textOf(fs[0])).toBe('On buprenorphine with no urine drug screen in the last 30 days: order one.');
    expect(only(findings([dispense('m', MEDS.methadone10, '2026-06-20', 14)]), 'monitoring-gap-uds')).toHaveLength(1);
  });
  test('does not fire with a recent screen, or when not on buprenorphine or methadone', () => {
    expect(
      only(findings([...bup, observation('uds', UDS_BUPRENORPHINE, '2026-06-15')]), 'monitoring-gap-uds'),
    ).toHaveLength(0);
    expect(only(findings([dispense('d', MEDS.sertraline, '2026-06-10', 30)]), 'monitoring-gap-uds')).toHaveLength(0);
  });
});

describe('opioid-benzodiazepine', () => {
  test('fires when an opioid and a benzodiazepine are both active (prescriptions or covering dispenses)', () => {
    const fs = only(
      findings([request('o', MEDS.oxycodone5, '2026-06-01'), request('b', MEDS.alprazolam05, '2026-06-15')]),
      'opioid-benzodiazepine',
    );
    expect(fs).toHaveLength(1);
    expect((fs[0] as DetectedIssue).severity).toBe('high');
    expect(refsOf(fs[0])).toEqual(['MedicationRequest/o', 'MedicationRequest/b']);
    const byDispense = findings([
      dispense('o', MEDS.oxycodone5, '2026-06-20', 30),
      dispense('b', MEDS.lorazepam1, '2026-06-25', 30),
    ]);
    expect(only(byDispense, 'opioid-benzodiazepine')).toHaveLength(1);
  });
  test('does not fire with only one of them, or once the benzodiazepine is stopped', () => {
    expect(only(findings([request('o', MEDS.oxycodone5, '2026-06-01')]), 'opioid-benzodiazepine')).toHaveLength(0);
    expect(
      only(
        findings([
          request('o', MEDS.oxycodone5, '2026-06-01'),
          request('b', MEDS.alprazolam05, '2026-05-01', { status: 'stopped' }),
        ]),
        'opioid-benzodiazepine',
      ),
    ).toHaveLength(0);
  });
});

describe('buprenorphine-naltrexone', () => {
  test('fires when both are active', () => {
    const fs = only(
      findings([request('b', MEDS.buprenorphineNaloxone8, '2026-06-01'), request('n', MEDS.naltrexone, '2026-06-20')]),
      'buprenorphine-naltrexone',
    );
    expect(fs).toHaveLength(1);
    expect((fs[0] as DetectedIssue).implicated?.map((r) => r.reference)).toEqual([
      'MedicationRequest/b',
      'MedicationRequest/n',
    ]);
  });
  test('does not fire after naltrexone is completed', () => {
    expect(
      only(
        findings([
          request('b', MEDS.buprenorphineNaloxone8, '2026-06-01'),
          request('n', MEDS.naltrexone, '2026-03-01', { status: 'completed' }),
        ]),
        'buprenorphine-naltrexone',
      ),
    ).toHaveLength(0);
  });
});

describe('high-mme', () => {
  test('warns at 50 MME/day and is high at 90', () => {
    const warn = only(
      findings([request('o', MEDS.oxycodone10, '2026-06-01', { dosageInstruction: [daily(1, 4)] })]),
      'high-mme',
    );
    expect(warn).toHaveLength(1);
    expect((warn[0] as DetectedIssue).severity).toBe('moderate');
    expect(textOf(warn[0])).toBe(
      'Active opioid analgesic prescriptions total 60 MME/day, at or above 50 MME/day (CDC 2022 conversion factors).',
    );
    const high = only(
      findings([
        request('o', MEDS.oxycodone10, '2026-06-01', { dosageInstruction: [daily(1, 4)] }),
        request('m', MEDS.morphineEr30, '2026-06-01', { dosageInstruction: [daily(1, 1)] }),
      ]),
      'high-mme',
    );
    expect((high[0] as DetectedIssue).severity).toBe('high');
    expect(refsOf(high[0])).toEqual(['MedicationRequest/o', 'MedicationRequest/m']);
  });
  test('does not fire below 50, or for buprenorphine for OUD', () => {
    expect(
      only(findings([request('o', MEDS.oxycodone5, '2026-06-01', { dosageInstruction: [daily(1, 4)] })]), 'high-mme'),
    ).toHaveLength(0);
    expect(
      only(
        findings([request('b', MEDS.buprenorphineNaloxone8, '2026-06-01', { dosageInstruction: [daily(3)] })]),
        'high-mme',
      ),
    ).toHaveLength(0);
  });
});

describe('checks as data', () => {
  const phq9Check: PlanDefinition = {
    resourceType: 'PlanDefinition',
    url: 'https://example.org/PlanDefinition/antidepressant-phq9',
    status: 'active',
    action: [
      {
        title: 'PHQ-9 due',
        code: [{ coding: [{ system: CHECKS_SYSTEM, code: 'antidepressant-no-phq9', display: 'PHQ-9 due' }] }],
        extension: [
          {
            url: 'https://meds-fhir.org/fhir/StructureDefinition/check-parameter',
            extension: [
              { url: 'name', valueString: 'lookbackDays' },
              { url: 'value', valueInteger: 90 },
            ],
          },
        ],
        condition: [
          {
            kind: 'applicability',
            expression: {
              language: 'text/fhirpath',
              expression:
                "isActive('antidepressants') and %resources.ofType(Observation).where(code.coding.where(system = 'http://loinc.org' and code = '44261-6').exists() and clinicalDate().withinDays(%lookbackDays)).empty()",
            },
          },
        ],
        output: [{ type: 'Task' }],
        dynamicValue: [
          {
            path: 'detail',
            expression: {
              language: 'text/fhirpath',
              expression: "'On an antidepressant with no PHQ-9 in ' & %lookbackDays.toString() & ' days.'",
            },
          },
          {
            path: 'evidence',
            expression: { language: 'text/fhirpath', expression: "activeEvidence('antidepressants')" },
          },
        ],
      },
    ],
  };
  const phq9 = { coding: [{ system: 'http://loinc.org', code: '44261-6', display: 'PHQ-9 total score' }] };

  test('a check added at runtime ("on an antidepressant and no PHQ-9 in 90 days") fires without code changes', () => {
    const checks = loadChecks();
    expect(checks.add(phq9Check)).toEqual(['antidepressant-no-phq9']);
    const rx = request('rx', MEDS.escitalopram, '2026-04-01');
    const fs = only(findings([rx, observation('old', phq9, '2026-02-01')], {}, checks), 'antidepressant-no-phq9');
    expect(fs).toHaveLength(1);
    expect(fs[0]).toMatchObject({
      resourceType: 'Task',
      description: 'On an antidepressant with no PHQ-9 in 90 days.',
      focus: { reference: 'MedicationRequest/rx' },
    });
    expect(
      only(findings([rx, observation('recent', phq9, '2026-06-01')], {}, checks), 'antidepressant-no-phq9'),
    ).toHaveLength(0);
    expect(checks.remove('antidepressant-no-phq9')).toBe(true);
  });

  test('finding ids are stable across reviews so they can be stored idempotently', () => {
    const resources = [request('o', MEDS.oxycodone5, '2026-06-01'), request('b', MEDS.alprazolam05, '2026-06-15')];
    expect(findings(resources)[0].id).toBe(findings(resources)[0].id);
  });

  test('malformed definitions are rejected when added', () => {
    const checks = loadChecks();
    const bad = (patch: object): PlanDefinition => ({ ...phq9Check, action: [{ ...phq9Check.action![0], ...patch }] });
    expect(() => checks.add(bad({ code: [{ text: 'no code' }] }))).toThrow(CheckDefinitionError);
    expect(() => checks.add(bad({ output: [{ type: 'Observation' }] }))).toThrow(/DetectedIssue or Task/);
    expect(() =>
      checks.add(
        bad({ condition: [{ kind: 'applicability', expression: { language: 'text/cql', expression: 'true' } }] }),
      ),
    ).toThrow(/text\/fhirpath/);
    expect(() =>
      checks.add(
        bad({
          condition: [
            { kind: 'applicability', expression: { language: 'text/fhirpath', expression: "isActive('x' and" } },
          ],
        }),
      ),
    ).toThrow(CheckDefinitionError);
  });

  test('every built-in check code from the issue is loaded from checks/', () => {
    expect(
      loadChecks()
        .list()
        .map((c) => c.code)
        .sort(),
    ).toEqual([
      'buprenorphine-naltrexone',
      'high-mme',
      'late-refill',
      'missed-doses',
      'monitoring-gap-uds',
      'new-start-no-follow-up',
      'opioid-benzodiazepine',
      'overdue-follow-up',
      'pdc-below-threshold',
    ]);
  });
});
