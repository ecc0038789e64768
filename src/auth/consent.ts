import type { Consent, ConsentProvision, Reference } from '@medplum/fhirtypes';
import { SENSITIVE_CODES } from './labels';

/** Who a Consent's provision may name: the requester's fhirUser and the organization it acts for. */
export interface ConsentActor {
  references: string[];
}

const PATIENT_REFERENCE = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})$/;

function coversNow(period: ConsentProvision['period'], now: Date): boolean {
  if (!period) return true;
  const start = period.start ? Date.parse(period.start) : undefined;
  const end = period.end ? Date.parse(period.end) : undefined;
  if (start !== undefined && (Number.isNaN(start) || now.getTime() < start)) return false;
  if (end !== undefined && (Number.isNaN(end) || now.getTime() > end)) return false;
  return true;
}

function namesActor(provision: ConsentProvision, actor: ConsentActor): boolean {
  return (provision.actor ?? []).some((a) => referenceMatches(a.reference, actor));
}

function referenceMatches(reference: Reference | undefined, actor: ConsentActor): boolean {
  const text = reference?.reference;
  if (typeof text !== 'string') return false;
  return actor.references.some((r) => text === r || text.endsWith(`/${r}`));
}

/** The sensitivity codes a provision lists (absent: all of them). */
function labelCodes(provision: ConsentProvision): string[] {
  const labels = provision.securityLabel;
  if (!labels?.length) return [...SENSITIVE_CODES.keys()];
  return labels.flatMap((l) => (typeof l.code === 'string' && SENSITIVE_CODES.has(l.code) ? [l.code] : []));
}

/**
 * What one Consent opens for the requester (../shared/SECURITY.md, "Consent that opens sensitive
 * records"): the patient and the codes, when the Consent is active, its provision a permit covering
 * now that names the requester; a nested deny provision that matches the requester closes its codes.
 */
export function consentOpening(
  consent: Consent,
  actor: ConsentActor,
  now: Date,
): { patient: string; codes: string[] } | undefined {
  const provision = consent.provision;
  if (consent.status !== 'active' || !provision || provision.type !== 'permit') return undefined;
  if (!coversNow(provision.period, now) || !namesActor(provision, actor)) return undefined;
  const patient = PATIENT_REFERENCE.exec(consent.patient?.reference ?? '')?.[1];
  if (!patient) return undefined;
  const open = new Set(labelCodes(provision));
  for (const nested of provision.provision ?? []) {
    if (nested.type !== 'deny' || !coversNow(nested.period, now)) continue;
    // A deny that names no actor applies to everyone the permit names.
    if (nested.actor?.length && !namesActor(nested, actor)) continue;
    for (const code of labelCodes(nested)) open.delete(code);
  }
  return open.size ? { patient, codes: [...open] } : undefined;
}
