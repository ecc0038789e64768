import { parseScope, parseScopes } from '../../../src/auth/scopes';

const letters = (text: string) => [...(parseScope(text)?.permissions ?? [])].sort().join('');

describe('SMART scopes', () => {
  it('reads v2 scopes with their context, type and permissions', () => {
    expect(parseScope('patient/MedicationRequest.rs')).toMatchObject({
      context: 'patient',
      resourceType: 'MedicationRequest',
    });
    expect(letters('patient/MedicationRequest.rs')).toBe('rs');
    expect(letters('user/*.cruds')).toBe('cdrsu');
    expect(parseScope('system/Observation.r')?.context).toBe('system');
  });

  it('maps v1 scopes as the SMART 2 page does', () => {
    expect(letters('patient/*.read')).toBe('rs');
    expect(letters('user/Observation.write')).toBe('cdu');
    expect(letters('system/*.*')).toBe('cdrsu');
  });

  it('keeps a v2 query restriction, and refuses one on a v1 scope', () => {
    expect(parseScope('patient/Observation.rs?category=laboratory')?.query).toEqual([['category', 'laboratory']]);
    expect(parseScope('patient/Observation.read?category=laboratory')).toBeUndefined();
    expect(parseScope('patient/Observation.rs?')).toBeUndefined();
  });

  it('grants nothing for identity scopes, unknown contexts, and letters out of order', () => {
    expect(parseScopes('openid fhirUser launch/patient offline_access')).toEqual([]);
    for (const text of [
      'admin/*.rs',
      'patient/*.sr',
      'patient/*.x',
      'patient/*.',
      'patient/observation.rs',
      'patient/*',
    ]) {
      expect([text, parseScope(text)]).toEqual([text, undefined]);
    }
    expect(parseScopes(42)).toEqual([]);
  });
});
