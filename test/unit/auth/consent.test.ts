import type { Consent } from '@medplum/fhirtypes';
import { consentOpening } from '../../../src/auth/consent';
import { ACT_CODE, SENSITIVE_CODES } from '../../../src/auth/labels';

const now = new Date('2026-12-01T12:00:00Z');
const actor = { references: ['Practitioner/d1', 'Organization/clinic'] };

function consent(provision: Consent['provision'], status: Consent['status'] = 'active'): Consent {
  return {
    resourceType: 'Consent',
    status,
    scope: { text: 'privacy' },
    category: [{ text: 'privacy' }],
    patient: { reference: 'Patient/p1' },
    provision,
  };
}

const permit = (extra: Partial<NonNullable<Consent['provision']>> = {}) => ({
  type: 'permit' as const,
  actor: [{ role: { text: 'recipient' }, reference: { reference: 'Practitioner/d1' } }],
  ...extra,
});

describe('what a Consent opens', () => {
  it('opens the listed labels of the patient to a named actor', () => {
    expect(
      consentOpening(consent(permit({ securityLabel: [{ system: ACT_CODE, code: '42CFRPart2' }] })), actor, now),
    ).toEqual({
      patient: 'p1',
      codes: ['42CFRPart2'],
    });
  });

  it('opens every sensitive code when no label is listed, and names the organization too', () => {
    const byOrganization = permit({
      actor: [{ role: { text: 'r' }, reference: { reference: 'Organization/clinic' } }],
    });
    expect(consentOpening(consent(byOrganization), actor, now)?.codes.sort()).toEqual(
      [...SENSITIVE_CODES.keys()].sort(),
    );
  });

  it('opens nothing when inactive, a deny, out of its period, or for someone else', () => {
    expect(consentOpening(consent(permit(), 'inactive'), actor, now)).toBeUndefined();
    expect(consentOpening(consent({ ...permit(), type: 'deny' }), actor, now)).toBeUndefined();
    expect(consentOpening(consent(permit({ period: { end: '2026-11-30' } })), actor, now)).toBeUndefined();
    expect(consentOpening(consent(permit({ period: { start: '2027-01-01' } })), actor, now)).toBeUndefined();
    expect(consentOpening(consent(permit()), { references: ['Practitioner/d2'] }, now)).toBeUndefined();
  });

  it('lets a nested deny close a label again', () => {
    const nested = permit({
      provision: [{ type: 'deny', securityLabel: [{ system: ACT_CODE, code: 'HIV' }] }],
    });
    const codes = consentOpening(consent(nested), actor, now)?.codes ?? [];
    expect(codes).toContain('42CFRPart2');
    expect(codes).not.toContain('HIV');
    const otherActor = permit({
      provision: [{ type: 'deny', actor: [{ role: { text: 'r' }, reference: { reference: 'Practitioner/d9' } }] }],
    });
    expect(consentOpening(consent(otherActor), actor, now)?.codes).toContain('HIV');
  });
});
