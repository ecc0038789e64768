import type { CodeSystem, StructureDefinition, ValueSet } from '@medplum/fhirtypes';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exampleResources } from '../../../src/examples';
import { parseJsonText } from '../../../src/fhir/json-text';
import { createValidator } from '../../../src/validation';
import { errors, prescription, summary, validator } from './helpers';

// The verdicts of the HL7 validator that ours gives since issue 15: UCUM units, codes of the code
// systems we hold in full, integers as written, the core profiles of the specification.

type Json = Record<string, unknown>;
const UCUM = 'http://unitsofmeasure.org';
const ORDERABLE_DRUG_FORM = 'http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm';
const CORE = 'http://hl7.org/fhir/StructureDefinition/';

const errorsOf = (resource: unknown) => summary(errors(validator().validate(resource)));
const texts = (resource: unknown) => errors(validator().validate(resource)).map((i) => i.details?.text);

/** The prescription with one dose quantity. */
const withDose = (dose: Json): Json => {
  const rx = prescription();
  rx.dosageInstruction = [
    { timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } }, doseAndRate: [{ doseQuantity: dose }] },
  ];
  return rx;
};
const DOSE = 'MedicationRequest.dosageInstruction[0].doseAndRate[0].doseQuantity';

describe('UCUM units', () => {
  it.each(['{tbl}', 'mg', 'mL', '10*3/uL', 'mg/dL', '[lb_av]', '/min', 'mm[Hg]', '{film}', 'kg/m2'])(
    '%s is a valid UCUM code',
    (code) => {
      expect(errorsOf(withDose({ value: 1, unit: 'x', system: UCUM, code }))).toEqual([]);
    },
  );

  it.each(['TAB', 'tbl', 'days', 'mcg', 'Kg', 'mmhg'])('%s is not', (code) => {
    const rx = withDose({ value: 1, unit: 'x', system: UCUM, code });
    expect(errorsOf(rx)).toEqual([['error', 'code-invalid', DOSE, undefined]]);
    expect(texts(rx)[0]).toMatch(new RegExp(`^Error processing unit '${code.replace(/[[\]]/g, '\\$&')}': `));
  });

  it('is checked on every Quantity type (Duration, Age, SimpleQuantity in a Ratio) and on a Coding', () => {
    const rx = prescription();
    rx.dispenseRequest = { expectedSupplyDuration: { value: 28, unit: 'days', system: UCUM, code: 'days' } };
    expect(errorsOf(rx)).toEqual([
      ['error', 'code-invalid', 'MedicationRequest.dispenseRequest.expectedSupplyDuration', undefined],
    ]);
    const medication = {
      resourceType: 'Medication',
      ingredient: [
        {
          itemCodeableConcept: { text: 'buprenorphine' },
          strength: {
            numerator: { value: 8, system: UCUM, code: 'mg' },
            denominator: { value: 1, system: UCUM, code: 'TAB' },
          },
        },
      ],
    };
    expect(errorsOf(medication)).toEqual([
      ['error', 'code-invalid', 'Medication.ingredient[0].strength.denominator', undefined],
    ]);
    const condition = {
      resourceType: 'Condition',
      subject: { reference: 'Patient/p1' },
      onsetAge: { value: 40, system: UCUM, code: 'years' },
      code: { coding: [{ system: UCUM, code: 'TAB' }] },
    };
    expect(errorsOf(condition).map(([, code, where]) => [code, where])).toEqual([
      ['code-invalid', 'Condition.onsetAge'],
      ['code-invalid', 'Condition.code.coding[0]'],
    ]);
  });

  it('a unit without a system, or of another system, is not taken for UCUM', () => {
    expect(errorsOf(withDose({ value: 2, unit: 'TAB' }))).toEqual([]);
    expect(errorsOf(withDose({ value: 2, unit: 'TAB', system: ORDERABLE_DRUG_FORM, code: 'TAB' }))).toEqual([]);
  });

  describe('a binding that fixes the dimension', () => {
    const v = createValidator();
    const TIME = 'http://hl7.org/fhir/ValueSet/all-time-units'; // R4: include UCUM where canonical = a
    const ALL = 'http://hl7.org/fhir/ValueSet/ucum-units'; // R4: include all of UCUM
    const profile = (valueSet: string, strength: 'required' | 'extensible'): StructureDefinition => ({
      resourceType: 'StructureDefinition',
      url: `http://clinic.example.org/StructureDefinition/supply-${strength}-${valueSet.split('/').pop()}`,
      name: 'Supply',
      status: 'active',
      kind: 'resource',
      abstract: false,
      type: 'MedicationDispense',
      baseDefinition: `${CORE}MedicationDispense`,
      derivation: 'constraint',
      differential: {
        element: [
          { id: 'MedicationDispense', path: 'MedicationDispense' },
          {
            id: 'MedicationDispense.daysSupply.code',
            path: 'MedicationDispense.daysSupply.code',
            binding: { strength, valueSet },
          },
        ],
      },
    });
    for (const p of [profile(TIME, 'required'), profile(TIME, 'extensible'), profile(ALL, 'required')]) {
      v.addConformanceResource(p);
    }
    const dispense = (profileUrl: string, code: string): Json => ({
      resourceType: 'MedicationDispense',
      meta: { profile: [profileUrl] },
      status: 'completed',
      medicationCodeableConcept: { text: 'x' },
      daysSupply: { value: 28, system: UCUM, code },
    });
    const verdict = (url: string, code: string) =>
      v
        .validate(dispense(url, code))
        .map((i) => [i.severity, i.code, i.expression?.[0]])
        .filter(([, , where]) => where === 'MedicationDispense.daysSupply.code');

    it.each(['d', 'wk', 'h', 'mo', 'a', 'min', 's'])('time unit %s is allowed', (code) => {
      expect(verdict(profile(TIME, 'required').url as string, code)).toEqual([]);
    });

    it.each(['mg', 'mL', '{tbl}', 'm'])(
      '%s is not a time unit: an error when required, a warning when extensible',
      (code) => {
        expect(verdict(profile(TIME, 'required').url as string, code)).toEqual([
          ['error', 'code-invalid', 'MedicationDispense.daysSupply.code'],
        ]);
        expect(verdict(profile(TIME, 'extensible').url as string, code)).toEqual([
          ['warning', 'code-invalid', 'MedicationDispense.daysSupply.code'],
        ]);
      },
    );

    it('the whole of UCUM takes any valid unit and nothing else', () => {
      const url = profile(ALL, 'required').url as string;
      expect(verdict(url, 'mg')).toEqual([]);
      expect(verdict(url, 'mcg')).toEqual([['error', 'code-invalid', 'MedicationDispense.daysSupply.code']]);
    });
  });
});

describe('codes of the code systems held in full', () => {
  const coded = (system: string, code: string): Json => ({
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system, code }] },
  });

  it.each([
    ['http://terminology.hl7.org/CodeSystem/v3-ActCode', 'AMB'],
    ['http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm', 'SLTAB'],
    ['http://terminology.hl7.org/CodeSystem/observation-category', 'vital-signs'],
    ['http://terminology.hl7.org/CodeSystem/v2-0203', 'MR'],
    ['http://terminology.hl7.org/CodeSystem/v2-0360', 'MD'], // shipped as v2-0360|2.3.1 and v2-0360|2.7
    ['http://hl7.org/fhir/administrative-gender', 'female'],
  ])('%s#%s is known', (system, code) => {
    expect(errorsOf(coded(system, code))).toEqual([]);
  });

  it.each([
    ['http://terminology.hl7.org/CodeSystem/v3-ActCode', 'AMBULATORY'],
    ['http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm', 'FILM'],
    ['http://terminology.hl7.org/CodeSystem/observation-category', 'Vital-Signs'], // case-sensitive
    ['http://terminology.hl7.org/CodeSystem/v2-0203', 'XX9'],
    ['http://terminology.hl7.org/CodeSystem/v2-0360', 'XX9'],
    ['http://hl7.org/fhir/administrative-gender', 'f'],
  ])('%s#%s is an unknown code, wherever it is used', (system, code) => {
    const obs = coded(system, code);
    expect(errorsOf(obs)).toEqual([['error', 'code-invalid', 'Observation.code.coding[0]', undefined]]);
    expect(texts(obs)[0]).toMatch(
      new RegExp(`^Unknown code '${code}' in the CodeSystem '${system}'( version '[^']+')?$`),
    );
  });

  it('is checked in any Coding and in a Quantity: tags, extensions, identifier types, units', () => {
    const patient = {
      resourceType: 'Patient',
      meta: { tag: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'NOPE' }] },
      extension: [
        {
          url: 'http://clinic.example.org/StructureDefinition/form',
          valueCoding: { system: ORDERABLE_DRUG_FORM, code: 'FILM' },
        },
      ],
      identifier: [
        { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MRN' }] }, value: '1' },
      ],
    };
    expect(errorsOf(patient).map(([, code, where]) => [code, where])).toEqual([
      ['code-invalid', 'Patient.meta.tag[0]'],
      ['code-invalid', 'Patient.extension[0].valueCoding'],
      ['code-invalid', 'Patient.identifier[0].type.coding[0]'],
    ]);
    expect(errorsOf(withDose({ value: 2, unit: 'film', system: ORDERABLE_DRUG_FORM, code: 'FILM' }))).toEqual([
      ['error', 'code-invalid', DOSE, undefined],
    ]);
  });

  it.each([
    ['http://snomed.info/sct', '0000000'],
    ['http://loinc.org', 'not-a-loinc'],
    ['http://www.nlm.nih.gov/research/umls/rxnorm', '99999999999'],
    ['http://www.whocc.no/atc', 'Z99ZZ99'],
    ['http://dicom.nema.org/resources/ontology/DCM', 'NOPE'], // shipped as an excerpt, not HL7's
    ['http://clinic.example.org/codes', 'anything'],
  ])('%s is not held in full: %s is not judged', (system, code) => {
    expect(errorsOf(coded(system, code))).toEqual([]);
  });

  describe('code systems stored through the API', () => {
    const v = createValidator();
    const cs = (url: string, content: CodeSystem['content'], extra: Partial<CodeSystem> = {}): CodeSystem => ({
      resourceType: 'CodeSystem',
      url,
      status: 'active',
      content,
      concept: [{ code: 'a', concept: [{ code: 'a-1' }] }, { code: 'B' }],
      ...extra,
    });
    const verdict = (system: string, code: string) => summary(errors(v.validate(coded(system, code))));
    const bad = [['error', 'code-invalid', 'Observation.code.coding[0]', undefined]];

    it('a complete one is judged at once, nested concepts included; a fragment or example is not', () => {
      v.addConformanceResource(cs('http://clinic.example.org/cs/complete', 'complete'));
      v.addConformanceResource(cs('http://clinic.example.org/cs/fragment', 'fragment'));
      v.addConformanceResource(cs('http://clinic.example.org/cs/example', 'example'));
      expect(verdict('http://clinic.example.org/cs/complete', 'a-1')).toEqual([]);
      expect(verdict('http://clinic.example.org/cs/complete', 'b')).toEqual(bad);
      expect(verdict('http://clinic.example.org/cs/fragment', 'zzz')).toEqual([]);
      expect(verdict('http://clinic.example.org/cs/example', 'zzz')).toEqual([]);
    });

    it('caseSensitive: false compares without case', () => {
      v.addConformanceResource(cs('http://clinic.example.org/cs/ci', 'complete', { caseSensitive: false }));
      expect(verdict('http://clinic.example.org/cs/ci', 'b')).toEqual([]);
      expect(verdict('http://clinic.example.org/cs/ci', 'c')).toEqual(bad);
    });

    it('one that takes over an HL7 url answers for it until removed, then the specification does again', () => {
      const url = 'http://terminology.hl7.org/CodeSystem/observation-category';
      v.addConformanceResource(cs(url, 'complete'));
      expect(verdict(url, 'a')).toEqual([]);
      expect(verdict(url, 'vital-signs')).toEqual(bad);
      v.removeConformanceResource('CodeSystem', url);
      expect(verdict(url, 'vital-signs')).toEqual([]);
      expect(verdict(url, 'a')).toEqual(bad);
    });

    it('a removed one is no longer judged', () => {
      v.addConformanceResource(cs('http://clinic.example.org/cs/gone', 'complete'));
      expect(verdict('http://clinic.example.org/cs/gone', 'zzz')).toEqual(bad);
      v.removeConformanceResource('CodeSystem', 'http://clinic.example.org/cs/gone');
      expect(verdict('http://clinic.example.org/cs/gone', 'zzz')).toEqual([]);
    });
  });
});

describe('integers as written', () => {
  const rx = (frequency: string, repeats = '2') =>
    parseJsonText(
      `{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/p1"},` +
        `"medicationCodeableConcept":{"text":"x"},"dispenseRequest":{"numberOfRepeatsAllowed":${repeats},` +
        `"quantity":{"value":56.0}},"dosageInstruction":[{"timing":{"repeat":{"frequency":${frequency},"period":1.0,"periodUnit":"d"}}}]}`,
    );
  const FREQUENCY = 'MedicationRequest.dosageInstruction[0].timing.repeat.frequency';

  it.each(['14', '1', '2147483647'])('%s is an integer (and decimals may be written 56.0 or 1.0)', (n) => {
    expect(errorsOf(rx(n))).toEqual([]);
  });

  it.each(['14.0', '1.4e1', '1E1', '14.00', '140e-1'])('%s is not, though it reads as a whole number', (n) => {
    const resource = rx(n);
    expect(errorsOf(resource)).toEqual([['error', 'value', FREQUENCY, undefined]]);
    expect(texts(resource)).toEqual([`The value '${n}' is not a valid positiveInt`]);
  });

  it('unsignedInt too, reported once when the value is not whole at all', () => {
    expect(texts(rx('1', '0.0'))).toEqual([`The value '0.0' is not a valid unsignedInt`]);
    expect(errorsOf(rx('1.5'))).toEqual([['error', 'value', FREQUENCY, undefined]]);
  });

  it('a number in an integer position that JSON.parse read is whole and stays valid (no text to judge)', () => {
    expect(errorsOf(JSON.parse(JSON.stringify(rx('14.0'))))).toEqual([]);
  });
});

describe('core profiles of the specification (profiles-others.json)', () => {
  const patient = { reference: 'Patient/p1' };
  const vitals = (profile: string, loinc: string, value: Json): Json => ({
    resourceType: 'Observation',
    meta: { profile: [`${CORE}${profile}`] },
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">vital sign</div>' },
    status: 'final',
    category: [
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
    ],
    code: { coding: [{ system: 'http://loinc.org', code: loinc }] },
    subject: patient,
    effectiveDateTime: '2026-06-01T10:00:00Z',
    ...value,
  });
  const q = (value: number, code: string): Json => ({ value, unit: code, system: UCUM, code });
  const bp = (systolic: Json, diastolic: Json) =>
    vitals('bp', '85354-9', {
      component: [
        { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: systolic },
        { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: diastolic },
      ],
    });

  it('every one of them compiles', () => {
    expect([...validator().unusableCoreProfiles]).toEqual([]);
    expect(validator().hasProfile(`${CORE}vitalsigns`)).toBe(true);
  });

  it.each([
    ['bodyweight', vitals('bodyweight', '29463-7', { valueQuantity: q(70, 'kg') })],
    ['bodyweight in pounds', vitals('bodyweight', '29463-7', { valueQuantity: q(154, '[lb_av]') })],
    ['heartrate', vitals('heartrate', '8867-4', { valueQuantity: q(62, '/min') })],
    ['bodytemp', vitals('bodytemp', '8310-5', { valueQuantity: q(37, 'Cel') })],
    ['bp', bp(q(120, 'mm[Hg]'), q(80, 'mm[Hg]'))],
    [
      'vitalsigns|4.0.1',
      {
        ...vitals('vitalsigns', '8867-4', { valueQuantity: q(62, '/min') }),
        meta: { profile: [`${CORE}vitalsigns|4.0.1`] },
      },
    ],
  ])('a valid %s is valid', (_name, resource) => {
    expect(
      summary(
        validator()
          .validate(resource)
          .filter((i) => i.severity !== 'information'),
      ),
    ).toEqual([]);
  });

  it.each([
    [
      'bodyweight in mg',
      vitals('bodyweight', '29463-7', { valueQuantity: q(70, 'mg') }),
      'Observation.valueQuantity.code',
    ],
    [
      'bodyweight without a unit code',
      vitals('bodyweight', '29463-7', { valueQuantity: { value: 70, unit: 'kg', system: UCUM } }),
      'Observation.valueQuantity.code',
    ],
    [
      'heartrate with the body weight code',
      vitals('heartrate', '29463-7', { valueQuantity: q(62, '/min') }),
      'Observation.code.coding',
    ],
    ['heartrate in Hz', vitals('heartrate', '8867-4', { valueQuantity: q(1, 'Hz') }), 'Observation.valueQuantity.code'],
    [
      'bodyweight without vital-signs category',
      { ...vitals('bodyweight', '29463-7', { valueQuantity: q(70, 'kg') }), category: [{ text: 'weight' }] },
      'Observation.category',
    ],
    [
      'bodyweight without a subject',
      { ...vitals('bodyweight', '29463-7', { valueQuantity: q(70, 'kg') }), subject: undefined },
      'Observation.subject',
    ],
    [
      'bp without diastolic',
      vitals('bp', '85354-9', {
        component: [
          { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: q(120, 'mm[Hg]') },
        ],
      }),
      'Observation.component',
    ],
    ['bp in kPa', bp(q(16, 'kPa'), q(80, 'mm[Hg]')), 'Observation.component[0].valueQuantity'],
  ])('%s is refused by the profile', (_name, resource, where) => {
    const clean = JSON.parse(JSON.stringify(resource)) as Json;
    const found = errors(validator().validate(clean)).map((i) => i.expression?.[0]);
    expect(found).toContain(where);
  });

  it('bp components are matched to their slices through the slices of their codings', () => {
    const issues = errors(validator().validate(bp(q(120, 'mm[Hg]'), q(80, 'mm[Hg]'))));
    expect(issues).toEqual([]);
  });

  it('a hasMember reference to a vital-signs Observation is allowed (targetProfile vitalsigns means Observation)', () => {
    const panel = vitals('vitalspanel', '85353-1', { hasMember: [{ reference: 'Observation/bw1' }] });
    expect(errors(validator().validate(panel))).toEqual([]);
  });

  it('they are not listed as our profiles (CapabilityStatement), and an unknown profile is still refused', () => {
    expect(
      validator()
        .profilesFor('Observation')
        .some((u) => u.startsWith(CORE)),
    ).toBe(false);
    const unknown = vitals('no-such-profile', '8867-4', {});
    expect(errorsOf(unknown)).toEqual([['error', 'processing', 'Observation.meta.profile[0]', undefined]]);
  });
});

describe('our own data passes a validator that checks UCUM and code-system membership', () => {
  const validOf = (resource: unknown) => summary(errors(validator().validate(resource)));

  it.each(exampleResources().map((r) => [`${r.resourceType}/${r.id}`, r]))('example %s', (_name, resource) => {
    expect(validOf(resource)).toEqual([]);
  });

  const scenarios = join(__dirname, '..', '..', 'fixtures', 'checks', 'scenarios');
  it.each(readdirSync(scenarios).filter((f) => f.endsWith('.resources.json')))('scenario fixture %s', (file) => {
    const resources = JSON.parse(readFileSync(join(scenarios, file), 'utf8')) as unknown[];
    expect(resources.flatMap(validOf)).toEqual([]);
  });

  it('the checks would catch the old data: TAB as UCUM and FILM as an orderable drug form', () => {
    const old = withDose({ value: 1, unit: 'TAB', system: UCUM, code: 'TAB' });
    expect(validOf(old)).toEqual([['error', 'code-invalid', DOSE, undefined]]);
    const film = withDose({ value: 2, unit: 'film', system: ORDERABLE_DRUG_FORM, code: 'FILM' });
    expect(validOf(film)).toEqual([['error', 'code-invalid', DOSE, undefined]]);
  });
});

describe('value sets', () => {
  it('R4 UCUM value sets with a canonical filter are usable at all (none is bound in the base specification)', () => {
    const v = createValidator();
    const vs: ValueSet = {
      resourceType: 'ValueSet',
      url: 'http://clinic.example.org/ValueSet/masses',
      status: 'active',
      compose: { include: [{ system: UCUM, filter: [{ property: 'canonical', op: '=', value: 'g' }] }] },
    };
    v.addConformanceResource(vs);
    const sd: StructureDefinition = {
      resourceType: 'StructureDefinition',
      url: 'http://clinic.example.org/StructureDefinition/mass-strength',
      name: 'MassStrength',
      status: 'active',
      kind: 'resource',
      abstract: false,
      type: 'Medication',
      baseDefinition: `${CORE}Medication`,
      derivation: 'constraint',
      differential: {
        element: [
          { id: 'Medication', path: 'Medication' },
          {
            id: 'Medication.ingredient.strength.numerator',
            path: 'Medication.ingredient.strength.numerator',
            binding: { strength: 'required', valueSet: vs.url },
          },
        ],
      },
    };
    v.addConformanceResource(sd);
    const med = (code: string) => ({
      resourceType: 'Medication',
      meta: { profile: [sd.url] },
      ingredient: [
        {
          itemCodeableConcept: { text: 'x' },
          strength: {
            numerator: { value: 8, system: UCUM, code },
            denominator: { value: 1, system: UCUM, code: '{tbl}' },
          },
        },
      ],
    });
    expect(summary(errors(v.validate(med('mg'))))).toEqual([]);
    expect(summary(errors(v.validate(med('[lb_av]'))))).toEqual([]);
    expect(summary(errors(v.validate(med('mL'))))).toEqual([
      ['error', 'code-invalid', 'Medication.ingredient[0].strength.numerator', undefined],
    ]);
  });
});
