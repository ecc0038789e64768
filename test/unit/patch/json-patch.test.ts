import type { Patient, Resource } from '@medplum/fhirtypes';
import { FhirError } from '../../../src/fhir/outcome';
import { applyJsonPatch, pointerToExpression } from '../../../src/patch/json-patch';

const patient: Patient = {
  resourceType: 'Patient',
  id: 'p1',
  name: [{ family: 'Nguyen', given: ['Lan'] }],
  gender: 'female',
};

function failure(resource: Resource, patch: unknown): FhirError {
  try {
    applyJsonPatch(resource, patch);
  } catch (error) {
    if (error instanceof FhirError) return error;
    throw error;
  }
  throw new Error('the patch was expected to fail');
}

describe('JSON Patch (RFC 6902)', () => {
  it('applies add, replace, remove, move, copy and test in order, without touching the input', () => {
    const before = structuredClone(patient);
    const patched = applyJsonPatch(patient, [
      { op: 'test', path: '/gender', value: 'female' },
      { op: 'replace', path: '/gender', value: 'other' },
      { op: 'add', path: '/name/0/given/-', value: 'Thi' },
      { op: 'add', path: '/birthDate', value: '1980-02-03' },
      { op: 'copy', from: '/name/0', path: '/name/1' },
      { op: 'move', from: '/name/1/family', path: '/name/1/text' },
      { op: 'remove', path: '/name/1/given' },
    ]);
    expect(patched).toEqual({
      resourceType: 'Patient',
      id: 'p1',
      name: [{ family: 'Nguyen', given: ['Lan', 'Thi'] }, { text: 'Nguyen' }],
      gender: 'other',
      birthDate: '1980-02-03',
    });
    expect(patient).toEqual(before);
  });

  it('does not share patch values with the result (a later change to the patch cannot leak into it)', () => {
    const value = { family: 'Tran' };
    const patched = applyJsonPatch(patient, [{ op: 'add', path: '/name/-', value }]) as Patient;
    value.family = 'changed';
    expect(patched.name?.[1].family).toBe('Tran');
  });

  it('answers 422 for a failed test, naming the operation index and the element', () => {
    const error = failure(patient, [
      { op: 'replace', path: '/gender', value: 'male' },
      { op: 'test', path: '/name/0/family', value: 'Tran' },
    ]);
    expect(error.status).toBe(422);
    const issue = error.outcome.issue?.[0];
    expect(issue?.code).toBe('processing');
    expect(issue?.expression).toEqual(['Patient.name[0].family']);
    expect(issue?.details?.text).toMatch(/operation 1 \(test \/name\/0\/family\)/);
    expect(issue?.diagnostics).toBe('TEST_OPERATION_FAILED at JSON Patch operation index /1');
  });

  it.each<[string, unknown[]]>([
    ['removing what is not there', [{ op: 'remove', path: '/birthDate' }]],
    ['replacing past the end of a list', [{ op: 'replace', path: '/name/3/family', value: 'x' }]],
    ['adding under a missing parent', [{ op: 'add', path: '/contact/0/gender', value: 'male' }]],
    ['moving from nowhere', [{ op: 'move', from: '/photo', path: '/note' }]],
    ['replacing the resource with a non-object', [{ op: 'replace', path: '', value: 42 }]],
  ])('answers 422 when the patch does not fit the resource: %s', (_name, patch) => {
    expect(failure(patient, patch).status).toBe(422);
  });

  it.each<[string, unknown]>([
    ['an object instead of an array', { op: 'remove', path: '/gender' }],
    ['an unknown op', [{ op: 'merge', path: '/gender', value: 'x' }]],
    ['a path without a leading slash', [{ op: 'remove', path: 'gender' }]],
    ['a replace without a value', [{ op: 'replace', path: '/gender' }]],
    ['a move without from', [{ op: 'move', path: '/gender' }]],
    ['an operation that is not an object', ['remove /gender']],
    ['a __proto__ path', [{ op: 'add', path: '/__proto__/polluted', value: true }]],
  ])('answers 400 for a malformed patch document: %s', (_name, patch) => {
    const error = failure(patient, patch);
    expect(error.status).toBe(400);
    expect(error.outcome.issue?.[0].expression?.length).toBeGreaterThan(0);
  });

  it('writes JSON Pointers as FHIRPath-like element paths', () => {
    expect(pointerToExpression('Patient', '')).toBe('Patient');
    expect(pointerToExpression('Patient', '/name/0/given/-')).toBe('Patient.name[0].given');
    expect(pointerToExpression('Patient', '/_birthDate/extension/1')).toBe('Patient.birthDate.extension[1]');
    expect(pointerToExpression('Patient', '/a~1b/c~0d')).toBe('Patient.a/b.c~d');
  });
});
