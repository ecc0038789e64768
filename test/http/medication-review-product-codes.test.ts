import type { DetectedIssue, Parameters, Resource, Task } from '@medplum/fhirtypes';
import { dispense, medication, patient, request as prescription } from '../fixtures/checks/builders';
import { adherenceOf, reviewOver } from '../support/review';
import { putAll, startTestServer, TestServer } from '../support/server';

/**
 * Fills coded the way pharmacies send them: RxNorm products (SCD, SBD) only, no ingredient and no ATC
 * code. They must count for their class like ingredient-coded fills do: a PDC, and a late-refill
 * finding once the supply runs out.
 */

const RX = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const product = (code: string, display: string) => ({ coding: [{ system: RX, code, display }] });
const ATORVASTATIN_10 = product('617312', 'atorvastatin 10 MG Oral Tablet');
const ATORVASTATIN_20 = product('617310', 'atorvastatin 20 MG Oral Tablet');
const AMLODIPINE_5 = product('197361', 'amlodipine 5 MG Oral Tablet');
const LEXAPRO_10 = product('352272', 'escitalopram 10 MG Oral Tablet [Lexapro]');

const REVIEW = { date: '2026-06-30', periodStart: '2026-01-01', periodEnd: '2026-06-30' };

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer(__filename);
});
afterAll(async () => server.close());

const loadTransaction = (resources: Resource[]): Promise<void> => putAll(server.app, resources);
const review = (patientId: string) => reviewOver(server.app, patientId, REVIEW);

function findingsOf(out: Parameters): { code?: string; resourceType: string; text?: string; evidence: string[] }[] {
  return (out.parameter ?? [])
    .filter((p) => p.name === 'finding')
    .map((p) => p.resource as DetectedIssue | Task)
    .map((f) => ({
      code: f.code?.coding?.[0]?.code,
      resourceType: f.resourceType,
      text: f.resourceType === 'DetectedIssue' ? f.detail : f.description,
      evidence:
        f.resourceType === 'DetectedIssue'
          ? (f.evidence ?? []).flatMap((e) => e.detail ?? []).map((r) => r.reference ?? '')
          : (f.input ?? []).flatMap((i) => (i.valueReference?.reference ? [i.valueReference.reference] : [])),
    }));
}

/** 30-day fills on the given days, each coded with its product. */
const fillsOf = (patientId: string, prefix: string, days: [string, ReturnType<typeof product>][]) =>
  days.map(([day, med], n) => dispense(`${prefix}-${n + 1}`, med, day, 30, { patientId }));

describe('$medication-review with fills coded as RxNorm products only', () => {
  it('statin fills coded as SCDs (atorvastatin 10 then 20 MG) get a PDC and a late-refill finding', async () => {
    const id = 'pc-statin';
    await loadTransaction([
      patient(id),
      prescription(`${id}-rx`, ATORVASTATIN_10, '2026-01-02', { patientId: id }),
      ...fillsOf(id, `${id}-fill`, [
        ['2026-01-10', ATORVASTATIN_10],
        ['2026-02-09', ATORVASTATIN_10],
        // A dose change is the same drug: the fills continue one another.
        ['2026-03-11', ATORVASTATIN_20],
        ['2026-04-10', ATORVASTATIN_20],
        ['2026-05-10', ATORVASTATIN_20],
      ]),
      // An amlodipine product is in no class: it must not show up next to the statins.
      ...fillsOf(id, `${id}-ccb`, [
        ['2026-01-10', AMLODIPINE_5],
        ['2026-02-09', AMLODIPINE_5],
        ['2026-03-11', AMLODIPINE_5],
      ]),
    ]);
    const out = await review(id);
    // 2026-01-10 .. 2026-06-30 is 172 days; five 30-day fills cover 150 of them, up to 2026-06-08.
    expect(adherenceOf(out)).toEqual([
      {
        medicationClass: 'statins',
        periodStart: '2026-01-10',
        periodEnd: '2026-06-30',
        daysInPeriod: 172,
        daysCovered: 150,
        pdc: 0.8721,
        adherent: true,
        lastCoveredDay: '2026-06-08',
        eligible: true,
      },
    ]);
    const findings = findingsOf(out);
    expect(findings.map(({ code, resourceType, text }) => ({ code, resourceType, text }))).toEqual([
      {
        code: 'late-refill',
        resourceType: 'DetectedIssue',
        text: 'Statins: supply ran out on 2026-06-08, 22 days before the review, with no refill (grace 7 days).',
      },
    ]);
    expect(findings[0].evidence).toContain(`MedicationDispense/${id}-fill-5`);
  });

  it('antidepressant fills of a Medication coded as an SBD (Lexapro) get a PDC and a late-refill finding', async () => {
    const id = 'pc-antidepressant';
    // The Medication carries only the branded product code: no ingredient list, no ATC code.
    const lexapro = medication(`${id}-lexapro`, LEXAPRO_10, []);
    delete lexapro.ingredient;
    const viaMedication = {
      medicationCodeableConcept: undefined,
      medicationReference: { reference: `Medication/${lexapro.id}` },
    };
    const fills = ['2026-01-05', '2026-02-04', '2026-03-06', '2026-04-05', '2026-05-05'].map((day, n) =>
      dispense(`${id}-fill-${n + 1}`, LEXAPRO_10, day, 30, { patientId: id, ...viaMedication }),
    );
    await loadTransaction([
      patient(id),
      lexapro,
      prescription(`${id}-rx`, LEXAPRO_10, '2025-12-20', { patientId: id, ...viaMedication }),
      ...fills,
    ]);
    const out = await review(id);
    // 2026-01-05 .. 2026-06-30 is 177 days; five 30-day fills cover 150, up to 2026-06-03.
    expect(adherenceOf(out)).toEqual([
      {
        medicationClass: 'antidepressants',
        periodStart: '2026-01-05',
        periodEnd: '2026-06-30',
        daysInPeriod: 177,
        daysCovered: 150,
        pdc: 0.8475,
        adherent: true,
        lastCoveredDay: '2026-06-03',
        eligible: true,
      },
    ]);
    const late = findingsOf(out).filter((f) => f.code === 'late-refill');
    expect(late.map(({ resourceType, text }) => ({ resourceType, text }))).toEqual([
      {
        resourceType: 'DetectedIssue',
        text: 'Antidepressants: supply ran out on 2026-06-03, 27 days before the review, with no refill (grace 7 days).',
      },
    ]);
    expect(late[0].evidence).toContain(`MedicationDispense/${id}-fill-5`);
  });
});

const NDC = 'http://hl7.org/fhir/sid/ndc';
type Via = 'medicationCodeableConcept' | 'Medication';
/**
 * [class, system, code, what it is, how the fills carry it]: brand products, newer diabetes drugs and NDCs
 * added from the openFDA NDC Directory (terminology/sources/openfda), one case each way per class.
 */
const NEW_CODES: [string, string, string, string, Via][] = [
  ['diabetes-non-insulin', NDC, '0006-0277-28', 'JANUVIA 100 mg tablets, 100 in a carton', 'medicationCodeableConcept'],
  ['diabetes-non-insulin', RX, '1545666', 'empagliflozin product of the Jardiance label', 'Medication'],
  ['diabetes-non-insulin', RX, '2601773', 'tirzepatide product of the Mounjaro label', 'medicationCodeableConcept'],
  ['statins', RX, '617314', 'atorvastatin product of the Lipitor label', 'medicationCodeableConcept'],
  ['statins', NDC, '58151-155-77', 'Lipitor 10 mg, 90 tablets', 'Medication'],
  ['antidepressants', NDC, '58151-574-93', 'Zoloft 25 mg, 30 tablets', 'medicationCodeableConcept'],
  ['antidepressants', RX, '208149', 'sertraline product of the Zoloft label', 'Medication'],
  [
    'ras-antagonists',
    RX,
    '1656356',
    'sacubitril / valsartan product of the Entresto label',
    'medicationCodeableConcept',
  ],
  ['ras-antagonists', NDC, '68071-1517-9', 'losartan 50 mg, 90 tablets (NuCare)', 'Medication'],
];

describe('$medication-review with brand, newer-drug and NDC codes', () => {
  it.each(NEW_CODES)('%s: %s %s (%s) via %s gets its PDC', async (key, system, code, display, via) => {
    const id = `nc-${key}-${code}`.replace(/[^A-Za-z0-9-]/g, '');
    const coded = { coding: [{ system, code, display }] };
    const med = medication(`${id}-med`, coded, []);
    delete med.ingredient;
    const carried =
      via === 'Medication'
        ? { medicationCodeableConcept: undefined, medicationReference: { reference: `Medication/${med.id}` } }
        : {};
    const fillsHere = ['2026-01-10', '2026-02-09', '2026-03-11'].map((day, n) =>
      dispense(`${id}-fill-${n + 1}`, coded, day, 30, { patientId: id, ...carried }),
    );
    await loadTransaction([patient(id), ...(via === 'Medication' ? [med] : []), ...fillsHere]);
    const out = await review(id);
    // 2026-01-10 .. 2026-06-30 is 172 days; three 30-day fills cover 90 of them, up to 2026-04-09.
    expect(adherenceOf(out)).toEqual([
      {
        medicationClass: key,
        periodStart: '2026-01-10',
        periodEnd: '2026-06-30',
        daysInPeriod: 172,
        daysCovered: 90,
        pdc: 0.5233,
        adherent: false,
        lastCoveredDay: '2026-04-09',
        eligible: true,
      },
    ]);
  });
});
