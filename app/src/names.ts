import type { Patient } from '@medplum/fhirtypes';

export function patientName(p: Patient): string {
  const name = p.name?.find((n) => n.use === 'official') ?? p.name?.[0];
  const text = name?.text ?? [...(name?.given ?? []), name?.family].filter(Boolean).join(' ');
  return text || `Patient/${p.id}`;
}
