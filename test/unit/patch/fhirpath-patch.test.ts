import type { Parameters, Resource } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FhirError } from '../../../src/fhir/outcome';
import { applyFhirPathPatch, quoteKeywordSteps } from '../../../src/patch/fhirpath-patch';

interface PatchCase {
  name: string;
  mode: string;
  input: Resource;
  patch: Parameters;
  output?: Resource;
  error?: string;
}

const cases = JSON.parse(
  readFileSync(join(__dirname, '..', '..', 'fixtures', 'patch', 'fhir-patch-tests.json'), 'utf8'),
) as PatchCase[];

/** Runs a patch and returns the FhirError it throws (the test fails when it throws nothing). */
function failure(resource: Resource, patch: Parameters): FhirError {
  try {
    applyFhirPathPatch(resource, patch);
  } catch (error) {
    if (error instanceof FhirError) return error;
    throw error;
  }
  throw new Error('the patch was expected to fail');
}

const operation = (type: string, ...parts: object[]) => ({
  name: 'operation',
  part: [{ name: 'type', valueCode: type }, ...parts],
});
const params = (...parameter: object[]): Parameters => ({ resourceType: 'Parameters', parameter }) as Parameters;
/** A resource as plain JSON, to look at choice keys and `_name` objects the FHIR types do not list. */
const json = (resource: Resource) => resource as unknown as Record<string, unknown>;
const path = (p: string) => ({ name: 'path', valueString: p });

describe('FHIR/fhir-test-cases r4/patch/fhir-patch-tests.xml', () => {
  it('has all 33 cases of the suite', () => {
    expect(cases).toHaveLength(33);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, testCase) => {
    const before = structuredClone(testCase.input);
    if (testCase.error !== undefined) {
      const error = failure(testCase.input, testCase.patch);
      expect(error.status).toBe(422);
      expect(error.outcome.issue?.[0].details?.text).toContain(testCase.error);
      expect(error.outcome.issue?.[0].expression).toContain('Parameters.parameter[0]');
    } else {
      expect(applyFhirPathPatch(testCase.input, testCase.patch)).toEqual(testCase.output);
    }
    // The stored resource must never be changed in place.
    expect(testCase.input).toEqual(before);
  });

  it('Add to list with insert at the end (the older copy, fhir-path-tests.xml)', () => {
    const identifier = (v: number) => ({ system: 'http://example.org', value: `value ${v}` });
    const patched = applyFhirPathPatch(
      { resourceType: 'Patient', identifier: [identifier(1), identifier(2)] },
      params(
        operation(
          'insert',
          path('Patient.identifier'),
          { name: 'index', valueInteger: 2 },
          {
            name: 'value',
            valueIdentifier: identifier(3),
          },
        ),
      ),
    );
    expect(patched).toEqual({ resourceType: 'Patient', identifier: [identifier(1), identifier(2), identifier(3)] });
  });
});

describe('FHIRPath Patch beyond the official cases', () => {
  const patient: Resource = {
    resourceType: 'Patient',
    name: [{ family: 'Nguyen', given: ['Lan', 'Thi'], _given: [null, { id: 'g2' }] }],
    birthDate: '1980-02-03',
    _birthDate: { extension: [{ url: 'http://example.org/time', valueTime: '10:00:00' }] },
    deceasedBoolean: false,
  } as unknown as Resource;

  it('replaces a choice element with another of its types, changing the JSON key', () => {
    const patched = applyFhirPathPatch(
      patient,
      params(operation('replace', path('Patient.deceased'), { name: 'value', valueDateTime: '2020-01-01' })),
    );
    expect(json(patched).deceasedBoolean).toBeUndefined();
    expect(json(patched).deceasedDateTime).toBe('2020-01-01');
  });

  it('adds a choice element under its base name and rejects a type the choice does not allow', () => {
    const added = applyFhirPathPatch(
      { resourceType: 'Patient' },
      params(
        operation(
          'add',
          path('Patient'),
          { name: 'name', valueString: 'multipleBirth' },
          {
            name: 'value',
            valueInteger: 2,
          },
        ),
      ),
    );
    expect(json(added).multipleBirthInteger).toBe(2);
    const error = failure(
      { resourceType: 'Patient' },
      params(
        operation(
          'add',
          path('Patient'),
          { name: 'name', valueString: 'deceased' },
          {
            name: 'value',
            valueString: 'yes',
          },
        ),
      ),
    );
    expect(error.status).toBe(422);
  });

  it('keeps primitive extensions aligned when a repeating primitive is deleted or moved', () => {
    const deleted = applyFhirPathPatch(patient, params(operation('delete', path('Patient.name[0].given[0]'))));
    expect((deleted as { name: unknown[] }).name[0]).toEqual({
      family: 'Nguyen',
      given: ['Thi'],
      _given: [{ id: 'g2' }],
    });
    const moved = applyFhirPathPatch(
      patient,
      params(
        operation(
          'move',
          path('Patient.name[0].given'),
          { name: 'source', valueInteger: 1 },
          {
            name: 'destination',
            valueInteger: 0,
          },
        ),
      ),
    );
    expect((moved as { name: unknown[] }).name[0]).toEqual({
      family: 'Nguyen',
      given: ['Thi', 'Lan'],
      _given: [{ id: 'g2' }, null],
    });
  });

  it("adds an extension to a primitive under its `_name` object, and deleting the primitive's value keeps it", () => {
    const withExtension = applyFhirPathPatch(
      { resourceType: 'Patient', gender: 'female' } as Resource,
      params(
        operation(
          'add',
          path('Patient.gender'),
          { name: 'name', valueString: 'extension' },
          {
            name: 'value',
            part: [
              { name: 'url', valueUri: 'http://example.org/source' },
              { name: 'value', valueString: 'self-reported' },
            ],
          },
        ),
      ),
    );
    expect(withExtension).toEqual({
      resourceType: 'Patient',
      gender: 'female',
      _gender: { extension: [{ url: 'http://example.org/source', valueString: 'self-reported' }] },
    });
    const withoutExtension = applyFhirPathPatch(
      patient,
      params(operation('delete', path('Patient.birthDate.extension'))),
    );
    expect(json(withoutExtension)._birthDate).toBeUndefined();
    expect(json(withoutExtension).birthDate).toBe('1980-02-03');
  });

  it('inserts into a list that does not exist yet at index 0, and refuses an index past its end', () => {
    const patched = applyFhirPathPatch(
      { resourceType: 'Patient' },
      params(
        operation(
          'insert',
          path('Patient.telecom'),
          { name: 'index', valueInteger: 0 },
          {
            name: 'value',
            valueContactPoint: { system: 'phone', value: '555' },
          },
        ),
      ),
    );
    expect(patched).toEqual({ resourceType: 'Patient', telecom: [{ system: 'phone', value: '555' }] });
    const error = failure(
      { resourceType: 'Patient' },
      params(
        operation(
          'insert',
          path('Patient.telecom'),
          { name: 'index', valueInteger: 1 },
          {
            name: 'value',
            valueContactPoint: { system: 'phone', value: '555' },
          },
        ),
      ),
    );
    expect(error.status).toBe(422);
  });

  it('deleting what is not there changes nothing; replacing it is 422', () => {
    expect(applyFhirPathPatch(patient, params(operation('delete', path('Patient.gender'))))).toEqual(patient);
    const error = failure(
      patient,
      params(operation('replace', path('Patient.gender'), { name: 'value', valueCode: 'male' })),
    );
    expect(error.status).toBe(422);
    expect(error.outcome.issue?.[0].expression).toEqual(['Parameters.parameter[0]', 'Patient.gender']);
  });

  it('refuses a path that matches several elements, a second add of a single element, and the resource itself', () => {
    expect(failure(patient, params(operation('delete', path('Patient.name.given')))).status).toBe(422);
    expect(
      failure(
        patient,
        params(
          operation(
            'add',
            path('Patient'),
            { name: 'name', valueString: 'birthDate' },
            {
              name: 'value',
              valueDate: '1990-01-01',
            },
          ),
        ),
      ).status,
    ).toBe(422);
    expect(failure(patient, params(operation('delete', path('Patient')))).status).toBe(422);
    expect(
      failure(patient, params(operation('replace', path("'x'"), { name: 'value', valueString: 'y' }))).status,
    ).toBe(422);
  });

  it.each<[string, Parameters, string]>([
    ['a parameter not named operation', params({ name: 'op', part: [] }), 'Parameters.parameter[0].name'],
    ['an unknown operation type', params(operation('upsert', path('Patient'))), 'Parameters.parameter[0]'],
    ['an operation without a path', params(operation('delete')), 'Parameters.parameter[0]'],
    ['a replace without a value', params(operation('replace', path('Patient.gender'))), 'Parameters.parameter[0]'],
    [
      'a move without a destination',
      params(operation('move', path('Patient.name'), { name: 'source', valueInteger: 0 })),
      'Parameters.parameter[0]',
    ],
    ['a path that is not FHIRPath', params(operation('delete', path('Patient.name['))), 'Parameters.parameter[0]'],
    [
      'a path that leaves the resource (resolve())',
      params(operation('delete', path('Patient.managingOrganization.resolve().name'))),
      'Parameters.parameter[0]',
    ],
  ])('%s is a malformed patch (400)', (_name, patch, expression) => {
    const error = failure(patient, patch);
    expect(error.status).toBe(400);
    expect(error.outcome.issue?.[0].expression).toContain(expression);
  });

  it('quotes element steps FHIRPath reserves as operators (Patient.text.div), not string literals or functions', () => {
    expect(quoteKeywordSteps("Patient.text.div.where($this != 'a.div')")).toBe(
      "Patient.text.`div`.where($this != 'a.div')",
    );
    expect(quoteKeywordSteps("Patient.name.given.contains('x')")).toBe("Patient.name.given.contains('x')");
    expect(quoteKeywordSteps('Patient.value.is(Quantity)')).toBe('Patient.value.is(Quantity)');
  });
});
