import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Medication, MedicationDispense, ValueSet } from '@medplum/fhirtypes';
import { NDC, RXNORM, loadMedicationClasses } from '../../../src/checks';
import { indexResources, medicationOf } from '../../../src/checks/medications';
import {
  OPENFDA_DIR,
  OPENFDA_SOURCE,
  buildOpenFdaValueSets,
  namedRxNormCodes,
  readOpenFdaRecords,
} from '../../../scripts/openfda-products';
import { dispense, medication } from '../../fixtures/checks/builders';

/**
 * Pharmacies and EHRs code what they dispensed as an RxNorm product (SCD, SBD, GPCK, BPCK), not as the
 * ingredient. Every shipped class must recognise such codes, alone in medicationCodeableConcept and as
 * the code of a referenced Medication that lists no ingredients.
 */

const classes = loadMedicationClasses();
const TERMINOLOGY = path.join(__dirname, '../../../terminology');

/** An RxNorm term type, or "openFDA" for an RxCUI openFDA attaches to a listing (SCD or SBD, unnamed there). */
type Tty = 'SCD' | 'SBD' | 'GPCK' | 'BPCK' | 'openFDA';
/** [class, term type, RxNorm code, RxNorm name]: one or more products of every shipped class. */
const PRODUCTS: [string, Tty, string, string][] = [
  ['buprenorphine', 'SCD', '1010604', 'buprenorphine 8 MG / naloxone 2 MG Sublingual Film'],
  ['buprenorphine', 'SBD', '1010606', 'buprenorphine 8 MG / naloxone 2 MG Sublingual Film [Suboxone]'],
  ['buprenorphine', 'SBD', '1996189', '0.5 ML buprenorphine 200 MG/ML Prefilled Syringe [Sublocade]'],
  ['methadone', 'SCD', '864706', 'methadone hydrochloride 10 MG Oral Tablet'],
  ['methadone', 'SBD', '864708', 'methadone hydrochloride 10 MG Oral Tablet [Dolophine]'],
  ['naltrexone', 'SCD', '1483744', 'naltrexone hydrochloride 50 MG Oral Tablet'],
  ['naltrexone', 'SCD', '637213', 'naltrexone 380 MG Injection'],
  ['antidepressants', 'SCD', '312941', 'sertraline 50 MG Oral Tablet'],
  ['antidepressants', 'SCD', '596926', 'duloxetine 20 MG Delayed Release Oral Capsule'],
  [
    'antidepressants',
    'GPCK',
    '1653469',
    '{7 (vilazodone hydrochloride 10 MG Oral Tablet) / 23 (vilazodone hydrochloride 20 MG Oral Tablet) } Pack',
  ],
  ['antidepressants', 'SBD', '352272', 'escitalopram 10 MG Oral Tablet [Lexapro]'],
  ['antidepressants', 'openFDA', '208149', 'sertraline hydrochloride product (openFDA: Zoloft 58151-574)'],
  ['antidepressants', 'openFDA', '104849', 'fluoxetine hydrochloride product (openFDA: Prozac 0777-3104)'],
  ['antidepressants', 'openFDA', '200371', 'citalopram hydrobromide product (openFDA: Celexa 0456-4010)'],
  ['antidepressants', 'openFDA', '1790886', 'vortioxetine hydrobromide product (openFDA: Trintellix 55154-0256)'],
  ['statins', 'SCD', '617312', 'atorvastatin 10 MG Oral Tablet'],
  ['statins', 'SCD', '859751', 'rosuvastatin calcium 20 MG Oral Tablet'],
  ['statins', 'SCD', '1422086', 'atorvastatin 10 MG / ezetimibe 10 MG Oral Tablet'],
  ['statins', 'SBD', '750227', 'amlodipine 5 MG / atorvastatin 10 MG Oral Tablet [Caduet]'],
  ['statins', 'SBD', '617314', 'atorvastatin 10 MG Oral Tablet [Lipitor]'],
  ['statins', 'SBD', '859421', 'rosuvastatin calcium 40 MG Oral Tablet [Crestor]'],
  ['statins', 'openFDA', '104490', 'simvastatin product (openFDA: ZOCOR 78206-181)'],
  ['statins', 'SBD', '1245441', 'ezetimibe 10 MG / simvastatin 40 MG Oral Tablet [Vytorin]'],
  ['statins', 'SBD', '904477', 'pravastatin sodium 40 MG Oral Tablet [Pravachol]'],
  ['statins', 'SCD', '757702', 'Simvastatin 10 MG Disintegrating Oral Tablet'],
  ['statins', 'SBD', '861646', 'pitavastatin calcium 1 MG Oral Tablet [Livalo]'],
  ['ras-antagonists', 'SCD', '314076', 'lisinopril 10 MG Oral Tablet'],
  ['ras-antagonists', 'SCD', '979492', 'losartan potassium 50 MG Oral Tablet'],
  ['ras-antagonists', 'SBD', '979494', 'losartan potassium 50 MG Oral Tablet [Cozaar]'],
  ['ras-antagonists', 'SBD', '104377', 'lisinopril 10 MG Oral Tablet [Zestril]'],
  ['ras-antagonists', 'SCD', '1011736', 'aliskiren 150 MG Oral Tablet'],
  ['ras-antagonists', 'SCD', '1656349', 'sacubitril 49 MG / valsartan 51 MG Oral Tablet'],
  ['ras-antagonists', 'openFDA', '1656356', 'sacubitril / valsartan product (openFDA: ENTRESTO 71610-807)'],
  ['ras-antagonists', 'SBD', '1656351', 'sacubitril 49 MG / valsartan 51 MG Oral Tablet [Entresto]'],
  ['diabetes-non-insulin', 'SCD', '310490', 'glipizide 5 MG Oral Tablet'],
  ['diabetes-non-insulin', 'SCD', '861740', 'glipizide 5 MG / metformin hydrochloride 500 MG Oral Tablet'],
  ['diabetes-non-insulin', 'SCD', '1551295', '0.5 ML dulaglutide 1.5 MG/ML Auto-Injector'],
  ['diabetes-non-insulin', 'SCD', '861007', 'metformin hydrochloride 500 MG Oral Tablet'],
  ['diabetes-non-insulin', 'SBD', '665036', 'sitagliptin 100 MG Oral Tablet [Januvia]'],
  ['diabetes-non-insulin', 'SCD', '1368006', 'alogliptin 25 MG Oral Tablet'],
  [
    'diabetes-non-insulin',
    'SBD',
    '1545156',
    'canagliflozin 150 MG / metformin hydrochloride 1000 MG Oral Tablet [Invokamet]',
  ],
  ['diabetes-non-insulin', 'SCD', '1545666', 'empagliflozin 25 MG Oral Tablet'],
  ['diabetes-non-insulin', 'SCD', '1488569', 'dapagliflozin 10 MG Oral Tablet'],
  ['diabetes-non-insulin', 'SCD', '312440', 'pioglitazone 30 MG Oral Tablet'],
  ['diabetes-non-insulin', 'SCD', '897122', '3 ML liraglutide 6 MG/ML Pen Injector'],
  ['diabetes-non-insulin', 'SCD', '2200644', 'semaglutide 14 MG Oral Tablet'],
  ['diabetes-non-insulin', 'openFDA', '2601773', 'tirzepatide product (openFDA: MOUNJARO 50090-8022)'],
  // From the VSAC Antidiabetic Medications expansion of 2022 (sources/vsac-antidiabetic-medications-non-insulin.tsv).
  ['diabetes-non-insulin', 'SBD', '665040', 'sitagliptin 25 MG Oral Tablet [Januvia]'],
  ['diabetes-non-insulin', 'SBD', '665044', 'sitagliptin 50 MG Oral Tablet [Januvia]'],
  [
    'diabetes-non-insulin',
    'SBD',
    '861771',
    'metformin hydrochloride 1000 MG / sitagliptin 50 MG Oral Tablet [Janumet]',
  ],
  [
    'diabetes-non-insulin',
    'SBD',
    '1243843',
    '24 HR metformin hydrochloride 1000 MG / sitagliptin 50 MG Extended Release Oral Tablet [Janumet]',
  ],
  ['diabetes-non-insulin', 'SCD', '1100702', 'linagliptin 5 MG Oral Tablet'],
  ['diabetes-non-insulin', 'SBD', '1100706', 'linagliptin 5 MG Oral Tablet [Tradjenta]'],
  ['diabetes-non-insulin', 'SCD', '858036', 'saxagliptin 5 MG Oral Tablet'],
  ['diabetes-non-insulin', 'SBD', '858044', 'saxagliptin 2.5 MG Oral Tablet [Onglyza]'],
  ['diabetes-non-insulin', 'SBD', '1486977', 'dapagliflozin 10 MG Oral Tablet [Farxiga]'],
  ['diabetes-non-insulin', 'SBD', '1545664', 'empagliflozin 10 MG Oral Tablet [Jardiance]'],
  ['diabetes-non-insulin', 'SBD', '261267', 'pioglitazone 30 MG Oral Tablet [Actos]'],
  ['diabetes-non-insulin', 'SBD', '2200650', 'semaglutide 14 MG Oral Tablet [Rybelsus]'],
  ['diabetes-non-insulin', 'SBD', '1551306', '0.5 ML dulaglutide 3 MG/ML Auto-Injector [Trulicity]'],
  [
    'diabetes-non-insulin',
    'GPCK',
    '1803902',
    '{1 (3 ML lixisenatide 0.05 MG/ML Pen Injector) / 1 (3 ML lixisenatide 0.1 MG/ML Pen Injector) } Pack',
  ],
  [
    'diabetes-non-insulin',
    'BPCK',
    '1803903',
    '{1 (3 ML lixisenatide 0.05 MG/ML Pen Injector [Adlyxin]) / 1 (3 ML lixisenatide 0.1 MG/ML Pen Injector [Adlyxin]) } Pack [Adlyxin Starter Kit]',
  ],
  ['insulin', 'SCD', '311041', 'insulin glargine 100 UNT/ML Injectable Solution'],
  ['insulin', 'SCD', '847230', '3 ML insulin glargine 100 UNT/ML Pen Injector'],
  ['insulin', 'SCD', '1860167', '3 ML insulin degludec 100 UNT/ML / liraglutide 3.6 MG/ML Pen Injector'],
  [
    'insulin',
    'GPCK',
    '1798387',
    '{90 (insulin, regular, human 4 UNT Inhalation Powder) / 90 (insulin, regular, human 8 UNT Inhalation Powder) } Pack',
  ],
  ['insulin', 'SBD', '1992169', 'insulin lispro 100 UNT/ML Injectable Solution [Admelog]'],
  ['insulin', 'SBD', '2268065', 'Sensor 3 ML insulin glargine 100 UNT/ML Pen Injector [Basaglar]'],
  // From the VSAC Antidiabetic Medications expansion of 2022 (sources/vsac-antidiabetic-medications-insulin.tsv) and Synthea.
  ['insulin', 'SBD', '285018', 'insulin glargine 100 UNT/ML Injectable Solution [Lantus]'],
  ['insulin', 'SBD', '1653204', '3 ML insulin aspart, human 100 UNT/ML Pen Injector [NovoLog]'],
  ['insulin', 'SBD', '311026', 'insulin isophane, human 100 UNT/ML Injectable Suspension [Humulin N]'],
  ['insulin', 'SBD', '865098', 'Insulin Lispro 100 UNT/ML Injectable Solution [Humalog]'],
  ['insulin', 'SBD', '1859000', '3 ML insulin glargine 100 UNT/ML / lixisenatide 0.033 MG/ML Pen Injector [Soliqua]'],
  ['insulin', 'SBD', '1860172', '3 ML insulin degludec 100 UNT/ML / liraglutide 3.6 MG/ML Pen Injector [Xultophy]'],
  [
    'insulin',
    'BPCK',
    '1798388',
    '{90 (insulin, regular, human 4 UNT Inhalation Powder [Afrezza]) / 90 (insulin, regular, human 8 UNT Inhalation Powder [Afrezza]) } Pack [Afrezza Titration Pack]',
  ],
  ['opioid-analgesics', 'SCD', '1049683', 'oxycodone hydrochloride 10 MG Oral Tablet'],
  [
    'opioid-analgesics',
    'SBD',
    '1049504',
    'Abuse-Deterrent 12 HR oxycodone hydrochloride 10 MG Extended Release Oral Tablet [Oxycontin]',
  ],
  ['opioid-analgesics', 'GPCK', '1740007', '{2 (fentanyl 0.6 MG/ACTUAT Mucosal Spray) } Pack'],
  [
    'opioid-analgesics',
    'BPCK',
    '1740008',
    '{2 (fentanyl 0.6 MG/ACTUAT Mucosal Spray [Subsys]) } Pack [Subsys 1200 MCG]',
  ],
  ['benzodiazepines', 'SCD', '308048', 'alprazolam 0.5 MG Oral Tablet'],
  ['benzodiazepines', 'SBD', '141928', 'alprazolam 0.5 MG Oral Tablet [Xanax]'],
  ['benzodiazepines', 'GPCK', '2272621', '{1 (0.1 ML) (diazepam 100 MG/ML Nasal Spray) } Pack'],
  [
    'benzodiazepines',
    'BPCK',
    '2272622',
    '{1 (0.1 ML) (diazepam 100 MG/ML Nasal Spray [Valtoco]) } Pack [Valtoco 10 MG Dose Kit]',
  ],
];

/** The classes a dispense falls in, given the resources it may reference. */
function classesOf(fill: MedicationDispense, extra: Medication[] = []): string[] {
  const info = medicationOf(fill, indexResources([fill, ...extra]));
  return classes
    .classes()
    .filter((c) => classes.matcher(c.key).matches(info))
    .map((c) => c.key);
}

const coded = (code: string, display: string) => ({ coding: [{ system: RXNORM, code, display }] });

describe('RxNorm product codes of every shipped class', () => {
  test('the table covers every shipped class', () => {
    expect(new Set(PRODUCTS.map(([key]) => key))).toEqual(new Set(classes.classes().map((c) => c.key)));
  });

  test.each(PRODUCTS)('%s: %s %s (%s) alone in medicationCodeableConcept', (key, _tty, code, display) => {
    expect(classesOf(dispense('d', coded(code, display), '2026-01-01', 30))).toContain(key);
  });

  test.each(PRODUCTS)('%s: %s %s through a referenced Medication with no ingredients', (key, _tty, code, display) => {
    const med = medication('m', coded(code, display), []);
    const fill = dispense('d', { text: 'see Medication' }, '2026-01-01', 30, {
      medicationCodeableConcept: undefined,
      medicationReference: { reference: 'Medication/m' },
    });
    expect(classesOf(fill, [med])).toContain(key);
  });

  test('a product is in its own classes and no others', () => {
    const only = (code: string, display: string) => classesOf(dispense('d', coded(code, display), '2026-01-01', 30));
    expect(only('617312', 'atorvastatin 10 MG Oral Tablet')).toEqual(['statins']);
    // Amlodipine / atorvastatin is a statin product; amlodipine alone is in no class.
    expect(only('750227', 'amlodipine 5 MG / atorvastatin 10 MG Oral Tablet [Caduet]')).toEqual(['statins']);
    expect(only('197361', 'amlodipine 5 MG Oral Tablet')).toEqual([]);
    expect(only('979494', 'losartan potassium 50 MG Oral Tablet [Cozaar]')).toEqual(['ras-antagonists']);
    // Buprenorphine products are opioid analgesics too (the CDC set says so); naltrexone is not an opioid.
    expect(only('1010606', 'buprenorphine 8 MG / naloxone 2 MG Sublingual Film [Suboxone]').sort()).toEqual([
      'buprenorphine',
      'opioid-analgesics',
    ]);
    expect(only('1483744', 'naltrexone hydrochloride 50 MG Oral Tablet')).toEqual(['naltrexone']);
    expect(only('2107520', 'insulin degludec 100 UNT/ML Injectable Solution')).toEqual(['insulin']);
    // The bupropion / naltrexone weight-loss tablet is left out of the naltrexone class.
    expect(
      only(
        '1551468',
        '12 HR bupropion hydrochloride 90 MG / naltrexone hydrochloride 8 MG Extended Release Oral Tablet',
      ),
    ).not.toContain('naltrexone');
  });

  test('every insulin product is an insulin and no non-insulin diabetes drug', () => {
    // Insulins listed next to the sulfonylureas in the VSAC set the diabetes products come from; the
    // degludec / liraglutide pen is an insulin product although it also holds a GLP-1 agonist.
    for (const [code, display] of [
      ['311041', 'insulin glargine 100 UNT/ML Injectable Solution'],
      ['1860167', '3 ML insulin degludec 100 UNT/ML / liraglutide 3.6 MG/ML Pen Injector'],
      ['311034', 'insulin, regular, human 100 UNT/ML Injectable Solution'],
    ]) {
      expect(classesOf(dispense('d', coded(code, display), '2026-01-01', 30))).toEqual(['insulin']);
    }
    const shipped = JSON.parse(
      fs.readFileSync(path.join(TERMINOLOGY, 'classes/diabetes-non-insulin.json'), 'utf8'),
    ) as ValueSet;
    const displays = (shipped.compose?.include ?? []).flatMap((i) => (i.concept ?? []).map((c) => c.display ?? ''));
    expect(displays.length).toBeGreaterThan(40);
    expect(displays.filter((d) => /insulin/i.test(d))).toEqual([]);
  });

  test('every shipped RxNorm product named insulin is in the insulin class, and no other is', () => {
    const named: { code: string; display: string }[] = [];
    for (const sub of ['classes', 'vsac', 'openfda', 'cdc']) {
      for (const file of fs.readdirSync(path.join(TERMINOLOGY, sub))) {
        const vs = JSON.parse(fs.readFileSync(path.join(TERMINOLOGY, sub, file), 'utf8')) as ValueSet;
        const concepts = [
          ...(vs.expansion?.contains ?? []),
          ...(vs.compose?.include ?? []).flatMap((i) => (i.concept ?? []).map((c) => ({ ...c, system: i.system }))),
        ];
        for (const c of concepts) {
          if (c.system === RXNORM && c.code) named.push({ code: c.code, display: c.display ?? '' });
        }
      }
    }
    const insulin = named.filter((n) => /insulin/i.test(n.display));
    // The insulin entries of the two VSAC sets (52 and 217, 31 in both), the Humalog vial and an openFDA RxCUI.
    expect(new Set(insulin.map((n) => n.code)).size).toBeGreaterThanOrEqual(240);
    const misplaced = insulin.filter(
      (n) => classesOf(dispense('d', coded(n.code, n.display), '2026-01-01', 30)).join() !== 'insulin',
    );
    expect(misplaced).toEqual([]);
    const others = named.filter((n) => !/insulin/i.test(n.display) && classes.containsCoding('insulin', n));
    expect(others).toEqual([]);
  });
});

/** The rows of one transcribed source file. */
function sourceFile(name: string): [string, string][] {
  return fs
    .readFileSync(path.join(TERMINOLOGY, 'sources', name), 'utf8')
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('#'))
    .map((line) => line.split('\t') as [string, string]);
}

describe('the VSAC Antidiabetic Medications expansion (2.16.840.1.113762.1.4.1190.58)', () => {
  const only = (code: string, display: string) => classesOf(dispense('d', coded(code, display), '2026-01-01', 30));

  test('each of its entries is in diabetes-non-insulin or, when named insulin, in insulin, and in no other class', () => {
    const nonInsulin = sourceFile('vsac-antidiabetic-medications-non-insulin.tsv');
    const insulin = sourceFile('vsac-antidiabetic-medications-insulin.tsv');
    expect(nonInsulin.length + insulin.length).toBe(986);
    const misplaced = [
      ...nonInsulin.filter(
        ([code, name]) => /insulin/i.test(name) || only(code, name).join() !== 'diabetes-non-insulin',
      ),
      ...insulin.filter(([code, name]) => !/insulin/i.test(name) || only(code, name).join() !== 'insulin'),
    ];
    expect(misplaced).toEqual([]);
  });

  test('an RxNorm ingredient code alone, as a Medication ingredient, puts a fill in its class', () => {
    const ingredients: [string, string, string][] = [
      ['diabetes-non-insulin', '593411', 'sitagliptin'],
      ['diabetes-non-insulin', '857974', 'saxagliptin'],
      ['diabetes-non-insulin', '1100699', 'linagliptin'],
      ['diabetes-non-insulin', '1368001', 'alogliptin'],
      ['diabetes-non-insulin', '1373458', 'canagliflozin'],
      ['diabetes-non-insulin', '1488564', 'dapagliflozin'],
      ['diabetes-non-insulin', '1545653', 'empagliflozin'],
      ['diabetes-non-insulin', '33738', 'pioglitazone'],
      ['diabetes-non-insulin', '475968', 'liraglutide'],
      ['diabetes-non-insulin', '1551291', 'dulaglutide'],
      ['diabetes-non-insulin', '1991302', 'semaglutide'],
      ['diabetes-non-insulin', '60548', 'exenatide'],
      ['insulin', '274783', 'insulin glargine'],
      ['insulin', '86009', 'insulin lispro'],
      ['insulin', '1670007', 'insulin degludec'],
      ['insulin', '139825', 'insulin detemir'],
    ];
    for (const [key, code, name] of ingredients) {
      const med = medication('m', { text: `${name} (compounded)` }, [{ code: coded(code, name) }]);
      const fill = dispense('d', { text: 'see Medication' }, '2026-01-01', 30, {
        medicationCodeableConcept: undefined,
        medicationReference: { reference: 'Medication/m' },
      });
      expect({ name, classes: classesOf(fill, [med]) }).toEqual({ name, classes: [key] });
    }
  });

  test('its Wegovy and Saxenda (weight-management) entries are left out of diabetes-non-insulin', () => {
    expect(only('2553506', '0.5 ML semaglutide 0.5 MG/ML Auto-Injector [Wegovy]')).toEqual([]);
    expect(only('1598268', '3 ML liraglutide 6 MG/ML Pen Injector [Saxenda]')).toEqual([]);
    // The Ozempic and Victoza products of the same ingredients are in.
    expect(only('1991309', 'semaglutide Pen Injector [Ozempic]')).toEqual(['diabetes-non-insulin']);
    expect(only('1653597', 'liraglutide Pen Injector [Victoza]')).toEqual(['diabetes-non-insulin']);
  });

  test('the names in the product table are the names of the transcribed sources', () => {
    const rows = sourceRows();
    const wrong = PRODUCTS.filter(([, tty]) => tty !== 'openFDA')
      .filter(([key]) => ['diabetes-non-insulin', 'insulin', 'statins'].includes(key))
      .filter(([, , code, name]) => rows.get(code) !== name);
    expect(wrong).toEqual([]);
  });
});

/**
 * [class, NDC as a pharmacy writes it, what it is]: package codes in every layout (4-4-2, 5-3-2, 5-4-1,
 * 11 digits) and a product code, all from the openFDA NDC Directory records in terminology/sources/openfda.
 */
const NDC_PRODUCTS: [string, string, string][] = [
  ['diabetes-non-insulin', '0006-0277-28', 'JANUVIA 100 mg, Merck (4-4-2)'],
  ['diabetes-non-insulin', '00597014030', 'Tradjenta 5 mg, Boehringer Ingelheim (11 digits)'],
  ['diabetes-non-insulin', '0597-0182-30', 'Glyxambi 10 mg / 5 mg'],
  ['diabetes-non-insulin', '68462-727-30', 'saxagliptin 5 mg, Glenmark'],
  ['diabetes-non-insulin', '0169-4060-12', 'Victoza pens'],
  ['diabetes-non-insulin', '0002-3182', 'Trulicity 4.5 mg (product NDC)'],
  ['diabetes-non-insulin', '0378-7185-05', 'metformin 500 mg, Mylan'],
  ['diabetes-non-insulin', '0310-6210-90', 'FARXIGA 10 mg'],
  ['statins', '58151-155-77', 'Lipitor 10 mg, Viatris (5-3-2)'],
  ['statins', '0310-7590-30', 'Crestor 40 mg'],
  ['statins', '66869-104-90', 'Livalo'],
  ['antidepressants', '58151-574-93', 'Zoloft 25 mg'],
  ['antidepressants', '0187-0731-30', 'Wellbutrin XL 300 mg'],
  ['antidepressants', '64764-730-30', 'Trintellix 10 mg'],
  ['ras-antagonists', '0078-0696-20', 'Entresto 97 mg / 103 mg'],
  ['insulin', '0002-8222-59', 'Insulin Lispro KwikPen, Lilly'],
  ['insulin', '73070-503-15', 'insulin degludec 200 U/mL pens, Novo Nordisk (5-3-2)'],
  ['insulin', '00169266290', 'Tresiba vial (11 digits)'],
  ['ras-antagonists', '68071-1517-9', 'losartan 50 mg, NuCare (5-4-1)'],
];

const ndcCoded = (code: string, display: string) => ({ coding: [{ system: NDC, code, display }] });

describe('NDC codes of the classes', () => {
  test.each(NDC_PRODUCTS)(
    '%s: %s (%s) alone in medicationCodeableConcept, in that class only',
    (key, code, display) => {
      expect(classesOf(dispense('d', ndcCoded(code, display), '2026-01-01', 30))).toEqual([key]);
    },
  );

  test.each(NDC_PRODUCTS)('%s: %s (%s) as the code of a referenced Medication', (key, code, display) => {
    const med = medication('m', ndcCoded(code, display), []);
    const fill = dispense('d', { text: 'see Medication' }, '2026-01-01', 30, {
      medicationCodeableConcept: undefined,
      medicationReference: { reference: 'Medication/m' },
    });
    expect(classesOf(fill, [med])).toEqual([key]);
  });

  test('an NDC that cannot be told apart, or of another system, matches nothing', () => {
    // Januvia 0006-0277-28 without its hyphens: 4-4-2, 5-3-2 and 5-4-1 read differently.
    expect(classesOf(dispense('d', ndcCoded('0006027728', 'JANUVIA'), '2026-01-01', 30))).toEqual([]);
    // The same digits under RxNorm are no NDC.
    expect(classesOf(dispense('d', coded('0006-0277-28', 'JANUVIA'), '2026-01-01', 30))).toEqual([]);
  });

  test('sacubitril / valsartan is one value set of its own: RxNorm SCD and SBD, and the NDCs of Entresto and its generics', () => {
    const arni = 'https://meds-fhir.org/fhir/ValueSet/sacubitril-valsartan';
    for (const code of ['1656340', '1656349', '1656354', '1656356']) {
      expect(classes.containsCoding(arni, { system: RXNORM, code })).toBe(true);
    }
    for (const code of ['0078-0696-20', '43598-643-60', '69238-2733-1']) {
      expect(classes.containsCoding(arni, { system: NDC, code })).toBe(true);
    }
    // Other RAS antagonists are not in it: losartan (RxNorm and NDC), lisinopril.
    expect(classes.containsCoding(arni, { system: RXNORM, code: '979492' })).toBe(false);
    expect(classes.containsCoding(arni, { system: NDC, code: '68071-1517-9' })).toBe(false);
    expect(classes.containsCoding(arni, { system: RXNORM, code: '314076' })).toBe(false);
  });
});

/** code → display of every row of the transcribed sources (terminology/sources/*.tsv). */
function sourceRows(): Map<string, string> {
  const rows = new Map<string, string>();
  const dir = path.join(TERMINOLOGY, 'sources');
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.tsv'))) {
    for (const [code, display] of sourceFile(file)) {
      const known = rows.get(code);
      if (known !== undefined && known !== display)
        throw new Error(`${file}: ${code} is "${display}" here, "${known}" elsewhere`);
      rows.set(code, display);
    }
  }
  return rows;
}

describe('provenance of the product codes', () => {
  test('every RxNorm product we ship (outside the CDC sets) is a row of a named source, with the same name', () => {
    const rows = sourceRows();
    const shipped: { file: string; code: string; display: string }[] = [];
    for (const sub of ['classes', 'vsac']) {
      for (const file of fs.readdirSync(path.join(TERMINOLOGY, sub))) {
        const vs = JSON.parse(fs.readFileSync(path.join(TERMINOLOGY, sub, file), 'utf8')) as ValueSet;
        for (const c of vs.expansion?.contains ?? []) {
          if (c.system === RXNORM) shipped.push({ file, code: c.code!, display: c.display ?? '' });
        }
        for (const inc of vs.compose?.include ?? []) {
          if (inc.system !== RXNORM) continue;
          // Products carry a strength or a pack count; ingredients (IN) are bare names and predate this.
          for (const c of inc.concept ?? [])
            if (/\d/.test(c.display ?? '')) shipped.push({ file, code: c.code, display: c.display! });
        }
      }
    }
    expect(shipped.length).toBeGreaterThan(600);
    const unsourced = shipped.filter((s) => rows.get(s.code) !== s.display);
    expect(unsourced).toEqual([]);
  });
});

describe('provenance of the openFDA product sets', () => {
  const records = readOpenFdaRecords(fs.readFileSync(OPENFDA_SOURCE, 'utf8'));

  test('the shipped sets are what scripts/openfda-products.ts builds from the transcribed records', () => {
    const built = buildOpenFdaValueSets(records, namedRxNormCodes());
    const shipped = fs
      .readdirSync(OPENFDA_DIR)
      .map((f) => JSON.parse(fs.readFileSync(path.join(OPENFDA_DIR, f), 'utf8')) as ValueSet);
    const byId = (a: ValueSet, b: ValueSet) => (a.id ?? '').localeCompare(b.id ?? '');
    expect(shipped.sort(byId)).toEqual(built.sort(byId));
    expect(records.length).toBeGreaterThan(150);
  });

  test('every record NDC and RxCUI is in the class its value set feeds, and in no other', () => {
    const feeds: Record<string, string> = { 'sacubitril-valsartan': 'ras-antagonists' };
    for (const r of records) {
      const key = feeds[r.valueSet] ?? r.valueSet;
      const codings = [{ system: NDC, code: r.productNdc }, ...r.rxcuis.map((code) => ({ system: RXNORM, code }))];
      for (const coding of codings) {
        const found = classes
          .classes()
          .filter((c) => classes.containsCoding(c.key, coding))
          .map((c) => c.key);
        expect({ coding, found }).toEqual({ coding, found: [key] });
      }
    }
  });
});
