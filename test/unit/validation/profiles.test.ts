import type { StructureDefinition, ValueSet } from '@medplum/fhirtypes';
import { createValidator, type Validator } from '../../../src/validation';
import { errors, PRESCRIPTION, prescription, summary, validator } from './helpers';

type Json = Record<string, unknown>;
const BASE = 'http://meds-fhir.example.org/fhir/StructureDefinition/';
const withProfile = (r: Json, url: string): Json => ({ ...r, meta: { profile: [url] } });
const rx = (changes: Json = {}): Json => {
  const r: Json = { ...withProfile(prescription(), PRESCRIPTION), ...changes };
  for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
  return r;
};
/** Profile issues only (the base validator's own issues are tested elsewhere). */
const profileIssues = (r: unknown, v: Validator = validator()) =>
  summary(v.validate(r).filter((i) => i.details?.text?.includes('(profile ') || i.code === 'processing'));

const patientRef = { reference: 'Patient/p1' };
const rxnorm = { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1010606' }] };
const obsCategory = (code: string) => [
  { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code }] },
];

const valid: Record<string, Json> = {
  'meds-prescription': rx(),
  'meds-dispense': {
    resourceType: 'MedicationDispense',
    status: 'completed',
    medicationCodeableConcept: rxnorm,
    subject: patientRef,
    performer: [{ actor: { reference: 'Organization/pharmacy' } }],
    authorizingPrescription: [{ reference: 'MedicationRequest/rx1' }],
    quantity: { value: 56, unit: 'film' },
    daysSupply: { value: 28, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
    whenHandedOver: '2026-09-02T15:30:00Z',
  },
  'meds-medication-statement': {
    resourceType: 'MedicationStatement',
    status: 'not-taken',
    statusReason: [{ text: 'ran out' }],
    medicationCodeableConcept: rxnorm,
    subject: patientRef,
    effectiveDateTime: '2026-09-03',
    dateAsserted: '2026-09-04',
    informationSource: patientRef,
  },
  'meds-urine-drug-screen': {
    resourceType: 'Observation',
    status: 'final',
    category: obsCategory('laboratory'),
    code: { coding: [{ system: 'http://loinc.org', code: '58397-1' }] },
    subject: patientRef,
    effectiveDateTime: '2026-09-03',
    valueCodeableConcept: { text: 'negative' },
  },
  'meds-side-effect': {
    resourceType: 'Observation',
    status: 'final',
    extension: [{ url: `${BASE}suspected-medication`, valueReference: { reference: 'MedicationRequest/rx1' } }],
    code: { coding: [{ system: 'http://snomed.info/sct', code: '62014003' }] },
    subject: patientRef,
    effectiveDateTime: '2026-09-03',
    valueCodeableConcept: { text: 'nausea' },
  },
  'meds-phq9': {
    resourceType: 'Observation',
    status: 'final',
    category: obsCategory('survey'),
    code: { coding: [{ system: 'http://loinc.org', code: '44261-6' }] },
    subject: patientRef,
    effectiveDateTime: '2026-09-03',
    valueInteger: 12,
  },
  'meds-follow-up-careplan': {
    resourceType: 'CarePlan',
    status: 'active',
    intent: 'plan',
    category: [{ text: 'follow-up' }],
    subject: patientRef,
    period: { start: '2026-09-01' },
    activity: [
      {
        detail: {
          code: { coding: [{ system: 'http://snomed.info/sct', code: '390906007' }] },
          status: 'scheduled',
          scheduledPeriod: { start: '2026-09-15' },
        },
      },
    ],
  },
};
const obs = (name: string, changes: Json): Json => {
  const r: Json = { ...withProfile(valid[name], BASE + name), ...changes };
  for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
  return r;
};

describe('profiles/ (valid instances)', () => {
  it.each(Object.keys(valid))('%s: a conforming instance has no errors', (name) => {
    expect(summary(errors(validator().validate(withProfile(valid[name], BASE + name))))).toEqual([]);
  });

  it('every profile in profiles/ is loaded and advertised per type', () => {
    for (const name of [...Object.keys(valid), 'suspected-medication'])
      expect(validator().hasProfile(BASE + name)).toBe(true);
    expect(validator().profilesFor('Observation').sort()).toEqual(
      [BASE + 'meds-phq9', BASE + 'meds-side-effect', BASE + 'meds-urine-drug-screen'].sort(),
    );
  });
});

describe('profile features', () => {
  it('cardinality: a required element is missing', () => {
    expect(profileIssues(rx({ authoredOn: undefined }))).toEqual([
      ['error', 'required', 'MedicationRequest.authoredOn', undefined],
    ]);
  });

  it('cardinality inside backbone elements: dosageInstruction.timing', () => {
    const r = rx({ dosageInstruction: [{ doseAndRate: [{ doseQuantity: { value: 1 } }] }] });
    expect(profileIssues(r)).toEqual([
      ['error', 'required', 'MedicationRequest.dosageInstruction[0].timing', undefined],
    ]);
  });

  it('type restriction through a choice: medication[x] must be a CodeableConcept', () => {
    const r = rx({ medicationCodeableConcept: undefined, medicationReference: { reference: 'Medication/m1' } });
    expect(profileIssues(r)).toEqual([['error', 'structure', 'MedicationRequest.medicationReference', undefined]]);
  });

  it('reference targetProfile: subject must be a Patient', () => {
    expect(profileIssues(rx({ subject: { reference: 'Group/g1' } }))).toEqual([
      ['error', 'structure', 'MedicationRequest.subject.reference', undefined],
    ]);
  });

  it('constraint of the profile (meds-rx-1), with its key', () => {
    expect(profileIssues(rx({ dispenseRequest: { numberOfRepeatsAllowed: 1 } }))).toEqual([
      ['error', 'invariant', 'MedicationRequest', 'meds-rx-1'],
    ]);
  });

  it('slicing by value (open): the RxNorm slice is required, other codings are allowed', () => {
    const snomedOnly = { coding: [{ system: 'http://snomed.info/sct', code: '1' }] };
    expect(profileIssues(rx({ medicationCodeableConcept: snomedOnly }))).toEqual([
      ['error', 'required', 'MedicationRequest.medicationCodeableConcept.coding', undefined],
    ]);
    const both = { coding: [...snomedOnly.coding, ...rxnorm.coding] };
    expect(profileIssues(rx({ medicationCodeableConcept: both }))).toEqual([]);
  });

  it('slice max: two RxNorm codings exceed the slice max of 1', () => {
    const two = { coding: [...rxnorm.coding, { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '2' }] };
    expect(profileIssues(rx({ medicationCodeableConcept: two }))).toEqual([
      ['error', 'structure', 'MedicationRequest.medicationCodeableConcept.coding', undefined],
    ]);
  });

  it('slicing by pattern: the laboratory category is required', () => {
    expect(profileIssues(obs('meds-urine-drug-screen', { category: obsCategory('vital-signs') }))).toEqual([
      ['error', 'required', 'Observation.category', undefined],
    ]);
  });

  it('required binding of a profile: a LOINC code outside the urine drug screen value set', () => {
    const r = obs('meds-urine-drug-screen', { code: { coding: [{ system: 'http://loinc.org', code: '15074-8' }] } });
    expect(profileIssues(r)).toEqual([['error', 'code-invalid', 'Observation.code', undefined]]);
  });

  it('extensible binding: a warning, not an error', () => {
    const r = obs('meds-urine-drug-screen', {
      interpretation: [{ coding: [{ system: 'http://example.org', code: 'weird' }] }],
    });
    expect(profileIssues(r)).toEqual([['warning', 'code-invalid', 'Observation.interpretation[0]', undefined]]);
  });

  it('pattern[x]: PHQ-9 code must be LOINC 44261-6', () => {
    const r = obs('meds-phq9', { code: { coding: [{ system: 'http://loinc.org', code: '44249-1' }] } });
    expect(profileIssues(r)).toEqual([['error', 'value', 'Observation.code', undefined]]);
  });

  it('choice type slice value[x]:valueInteger with its constraint (0..27)', () => {
    expect(profileIssues(obs('meds-phq9', { valueInteger: 28 }))).toEqual([
      ['error', 'invariant', 'Observation.valueInteger', 'meds-phq9-1'],
    ]);
    expect(profileIssues(obs('meds-phq9', { valueInteger: undefined, valueString: '12' }))).toEqual([
      ['error', 'structure', 'Observation.valueString', undefined],
      ['error', 'required', 'Observation.valueInteger', undefined],
    ]);
  });

  it('invariant with FHIRPath on the root: not-taken needs a statusReason (meds-ms-1)', () => {
    expect(profileIssues(obs('meds-medication-statement', { statusReason: undefined }))).toEqual([
      ['error', 'invariant', 'MedicationStatement', 'meds-ms-1'],
    ]);
  });

  it('required binding to a profile value set (subset of the base codes)', () => {
    expect(profileIssues(obs('meds-medication-statement', { status: 'intended' }))).toEqual([
      ['error', 'code-invalid', 'MedicationStatement.status', undefined],
    ]);
  });

  it('extension defined and required by a profile', () => {
    expect(profileIssues(obs('meds-side-effect', { extension: undefined }))).toEqual([
      ['error', 'required', 'Observation.extension', undefined],
    ]);
    const wrongTarget = [{ url: `${BASE}suspected-medication`, valueReference: { reference: 'Patient/p1' } }];
    expect(profileIssues(obs('meds-side-effect', { extension: wrongTarget }))).toEqual([
      ['error', 'structure', 'Observation.extension[0].valueReference.reference', undefined],
    ]);
    const wrongType = [{ url: `${BASE}suspected-medication`, valueString: 'the pill' }];
    expect(profileIssues(obs('meds-side-effect', { extension: wrongType }))).toEqual([
      ['error', 'structure', 'Observation.extension[0].valueString', undefined],
    ]);
  });

  it('CarePlan: activity.detail.scheduled[x] is required', () => {
    const activity = [{ detail: { code: { text: 'visit' }, status: 'scheduled' } }];
    expect(profileIssues(obs('meds-follow-up-careplan', { activity }))).toEqual([
      ['error', 'required', 'CarePlan.activity[0].detail.scheduled[x]', undefined],
    ]);
  });

  it('meta.profile naming an unknown profile is an error', () => {
    const r = { ...prescription(), meta: { profile: ['http://example.org/nope'] } };
    expect(summary(errors(validator().validate(r)))).toEqual([
      ['error', 'processing', 'MedicationRequest.meta.profile[0]', undefined],
    ]);
  });

  it('a profile of another type is an error; a core definition of the same type is accepted', () => {
    const r = {
      ...prescription(),
      meta: { profile: [BASE + 'meds-dispense', 'http://hl7.org/fhir/StructureDefinition/MedicationRequest'] },
    };
    expect(summary(errors(validator().validate(r)))).toEqual([
      ['error', 'processing', 'MedicationRequest.meta.profile[0]', undefined],
    ]);
  });

  it('options.profiles validates against profiles the resource does not declare ($validate?profile=)', () => {
    const r = { ...prescription(), authoredOn: undefined };
    delete r.authoredOn;
    expect(errors(validator().validate(r))).toEqual([]);
    expect(summary(errors(validator().validate(r, { profiles: [PRESCRIPTION] })))).toEqual([
      ['error', 'required', 'MedicationRequest.authoredOn', undefined],
    ]);
  });

  it('Bundle entries and contained resources are validated against their meta.profile', () => {
    const bad = { ...valid['meds-phq9'], meta: { profile: [BASE + 'meds-phq9'] }, valueInteger: 99 };
    const bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: bad }] };
    expect(summary(errors(validator().validate(bundle)))).toEqual([
      ['error', 'invariant', 'Bundle.entry[0].resource.valueInteger', 'meds-phq9-1'],
    ]);
  });
});

describe('runtime conformance resources (no restart)', () => {
  const v = createValidator();
  const url = 'http://example.org/StructureDefinition/strict-obs';
  const vsUrl = 'http://example.org/ValueSet/colors';

  beforeAll(() => {
    const vs: ValueSet = {
      resourceType: 'ValueSet',
      url: vsUrl,
      status: 'active',
      compose: { include: [{ system: 'http://example.org/colors', concept: [{ code: 'red' }, { code: 'blue' }] }] },
    };
    const sd: StructureDefinition = {
      resourceType: 'StructureDefinition',
      url,
      name: 'StrictObs',
      status: 'active',
      kind: 'resource',
      abstract: false,
      type: 'Observation',
      baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Observation',
      derivation: 'constraint',
      differential: {
        element: [
          {
            id: 'Observation',
            path: 'Observation',
            constraint: [
              { key: 'so-1', severity: 'warning', human: 'should have a note', expression: 'note.exists()' },
            ],
          },
          { id: 'Observation.status', path: 'Observation.status', fixedCode: 'final' },
          {
            id: 'Observation.code.coding',
            path: 'Observation.code.coding',
            slicing: { discriminator: [{ type: 'value', path: 'system' }], rules: 'closed' },
          },
          { id: 'Observation.code.coding:color', path: 'Observation.code.coding', sliceName: 'color', min: 1 },
          {
            id: 'Observation.code.coding:color.system',
            path: 'Observation.code.coding.system',
            fixedUri: 'http://example.org/colors',
          },
          {
            id: 'Observation.code.coding:color.code',
            path: 'Observation.code.coding.code',
            binding: { strength: 'required', valueSet: vsUrl },
          },
          { id: 'Observation.note', path: 'Observation.note', max: '1' },
        ],
      },
    };
    v.addConformanceResource(vs);
    v.addConformanceResource(sd);
  });

  const base = {
    resourceType: 'Observation',
    meta: { profile: [url] },
    status: 'final',
    code: { coding: [{ system: 'http://example.org/colors', code: 'red' }] },
    note: [{ text: 'ok' }],
  };

  it('is known at once and a conforming instance passes', () => {
    expect(v.hasProfile(url)).toBe(true);
    expect(profileIssues(base, v)).toEqual([]);
  });

  it('fixed[x]', () => {
    expect(profileIssues({ ...base, status: 'preliminary' }, v)).toEqual([
      ['error', 'value', 'Observation.status', undefined],
    ]);
  });

  it('closed slicing rejects an unmatched item; the binding of a runtime value set applies', () => {
    const code = {
      coding: [
        { system: 'http://example.org/colors', code: 'green' },
        { system: 'http://loinc.org', code: '1-8' },
      ],
    };
    expect(profileIssues({ ...base, code }, v)).toEqual([
      ['error', 'structure', 'Observation.code.coding[1]', undefined],
      ['error', 'code-invalid', 'Observation.code.coding[0].code', undefined],
    ]);
  });

  it('max cardinality and a warning-severity constraint', () => {
    expect(profileIssues({ ...base, note: [{ text: 'a' }, { text: 'b' }] }, v)).toEqual([
      ['error', 'structure', 'Observation.note', undefined],
    ]);
    const { note: _note, ...withoutNote } = base;
    expect(profileIssues(withoutNote, v)).toEqual([['warning', 'invariant', 'Observation', 'so-1']]);
  });

  it('type and profile discriminators', () => {
    const bundleProfile: StructureDefinition = {
      resourceType: 'StructureDefinition',
      url: 'http://example.org/StructureDefinition/patient-bundle',
      name: 'PatientBundle',
      status: 'active',
      kind: 'resource',
      abstract: false,
      type: 'Bundle',
      derivation: 'constraint',
      baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Bundle',
      differential: {
        element: [
          { id: 'Bundle', path: 'Bundle' },
          {
            id: 'Bundle.entry',
            path: 'Bundle.entry',
            slicing: { discriminator: [{ type: 'type', path: 'resource' }], rules: 'open' },
          },
          { id: 'Bundle.entry:patient', path: 'Bundle.entry', sliceName: 'patient', min: 1, max: '1' },
          { id: 'Bundle.entry:patient.resource', path: 'Bundle.entry.resource', type: [{ code: 'Patient' }] },
          {
            id: 'Bundle.entry:strict',
            path: 'Bundle.entry',
            sliceName: 'strict',
            min: 1,
          },
          {
            id: 'Bundle.entry:strict.resource',
            path: 'Bundle.entry.resource',
            type: [{ code: 'Observation', profile: [url] }],
          },
        ],
      },
    };
    // The second slicing discriminator kind, by profile, on the same element: a separate profile.
    const byProfile: StructureDefinition = {
      ...bundleProfile,
      url: 'http://example.org/StructureDefinition/strict-bundle',
      differential: {
        element: [
          { id: 'Bundle', path: 'Bundle' },
          {
            id: 'Bundle.entry',
            path: 'Bundle.entry',
            slicing: { discriminator: [{ type: 'profile', path: 'resource' }], rules: 'open' },
          },
          { id: 'Bundle.entry:strict', path: 'Bundle.entry', sliceName: 'strict', min: 1 },
          {
            id: 'Bundle.entry:strict.resource',
            path: 'Bundle.entry.resource',
            type: [{ code: 'Observation', profile: [url] }],
          },
        ],
      },
    };
    v.addConformanceResource({
      ...bundleProfile,
      differential: { element: bundleProfile.differential!.element!.slice(0, 4) },
    });
    v.addConformanceResource(byProfile);
    const patient = { resource: { resourceType: 'Patient', id: 'p1' } };
    const strictObs = { resource: base };
    const looseObs = { resource: { ...base, meta: undefined, status: 'preliminary' } };
    const bundle = (profile: string, entry: unknown[]) => ({
      resourceType: 'Bundle',
      meta: { profile: [profile] },
      type: 'collection',
      entry,
    });
    expect(profileIssues(bundle(bundleProfile.url!, [patient]), v)).toEqual([]);
    expect(profileIssues(bundle(bundleProfile.url!, [strictObs]), v)).toEqual([
      ['error', 'required', 'Bundle.entry', undefined],
    ]);
    expect(profileIssues(bundle(byProfile.url!, [looseObs]), v)).toEqual([
      ['error', 'required', 'Bundle.entry', undefined],
    ]);
    expect(profileIssues(bundle(byProfile.url!, [looseObs, strictObs]), v)).toEqual([]);
  });

  it('an unusable StructureDefinition is reported before it is stored', () => {
    expect(
      v.conformanceProblems({
        resourceType: 'StructureDefinition',
        url: 'x',
        type: 'Patient',
        derivation: 'specialization',
      }),
    ).toHaveLength(1);
    expect(v.conformanceProblems(base)).toEqual([]);
  });

  it('requiredProfiles: every resource of a type must conform', () => {
    const strict = createValidator({ requiredProfiles: { MedicationRequest: [PRESCRIPTION] } });
    const r = { ...prescription() };
    delete r.authoredOn;
    expect(summary(errors(strict.validate(r)))).toEqual([
      ['error', 'required', 'MedicationRequest.authoredOn', undefined],
    ]);
  });
});
