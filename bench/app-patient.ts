import type { CareTeam, Observation, Resource } from '@medplum/fhirtypes';
import * as b from '../test/fixtures/checks/builders';

/**
 * A patient with three years of history (2023-07-01 to 2026-06-30, about 150 resources): buprenorphine
 * for OUD in 28-day fills with a few late refills and early ones (PQA shifts them), atorvastatin in
 * 30-day fills, lisinopril, monthly visits, drug screens and PHQ-9 every quarter, missed doses and a
 * care plan; on Dr. Okafor's care team (the examples' practitioner). For bench/app.ts.
 */
export const THREE_YEAR_PATIENT = 'three-years';

const addDays = (day: string, n: number) =>
  new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

const PHQ9 = { coding: [{ system: 'http://loinc.org', code: '44261-6', display: 'PHQ-9 total score' }] };

export function threeYearPatient(practitioner = 'example-prescriber'): Resource[] {
  const p = THREE_YEAR_PATIENT;
  const start = '2023-07-01';
  const end = '2026-06-30';
  const out: Resource[] = [
    { ...b.patient(p), name: [{ family: 'Moreno', given: ['Lucía'] }], gender: 'female' },
    b.condition(`${p}-oud`, b.OUD_DIAGNOSIS, p),
    b.request(`${p}-rx-bup`, b.MEDS.buprenorphineNaloxone8, start, { patientId: p, dosageInstruction: [b.daily(2)] }),
    b.request(`${p}-rx-statin`, b.MEDS.atorvastatin, start, { patientId: p }),
    b.request(`${p}-rx-ras`, b.MEDS.lisinopril, '2024-03-01', { patientId: p }),
  ];
  let day = start;
  for (let k = 0; day <= end; k++) {
    out.push(
      b.dispense(`${p}-bup-${k}`, b.MEDS.buprenorphineNaloxone8, day, 28, {
        patientId: p,
        prescription: `${p}-rx-bup`,
      }),
    );
    day = addDays(day, k % 9 === 4 ? 40 : k % 7 === 2 ? 24 : 28);
  }
  day = addDays(start, 2);
  for (let k = 0; day <= end; k++) {
    out.push(
      b.dispense(`${p}-statin-${k}`, b.MEDS.atorvastatin, day, 30, { patientId: p, prescription: `${p}-rx-statin` }),
    );
    day = addDays(day, k % 11 === 6 ? 45 : 31);
  }
  day = '2024-03-01';
  for (let k = 0; day <= end; k++) {
    out.push(b.dispense(`${p}-ras-${k}`, b.MEDS.lisinopril, day, 90, { patientId: p, prescription: `${p}-rx-ras` }));
    day = addDays(day, 92);
  }
  for (let k = 0; k < 36; k++) out.push(b.encounter(`${p}-visit-${k}`, addDays(start, 5 + k * 30), 'finished', p));
  for (let k = 0; k < 12; k++) {
    out.push(b.observation(`${p}-uds-${k}`, b.UDS_BUPRENORPHINE, addDays(start, 20 + k * 91), p));
    const phq: Observation = {
      ...b.observation(`${p}-phq-${k}`, PHQ9, addDays(start, 25 + k * 91), p),
      valueInteger: [18, 15, 14, 11, 9, 12, 8, 7, 9, 6, 5, 4][k],
    };
    out.push(phq);
  }
  for (const [k, d] of ['2024-02-10', '2025-05-03', '2026-06-20'].entries()) {
    out.push(b.statement(`${p}-missed-${k}`, b.MEDS.buprenorphineNaloxone8, d, 'not-taken', p));
  }
  out.push(
    b.carePlan(
      `${p}-plan`,
      [
        { description: 'Counselling', status: 'completed', due: '2026-05-15' },
        { description: 'Follow-up visit', status: 'scheduled', due: '2026-06-15' },
        { description: 'Follow-up visit', status: 'scheduled', due: '2026-07-15' },
      ],
      p,
    ),
  );
  const team: CareTeam = {
    resourceType: 'CareTeam',
    id: `team-${p}`,
    status: 'active',
    subject: { reference: `Patient/${p}` },
    participant: [{ member: { reference: `Practitioner/${practitioner}` } }],
  };
  out.push(team);
  return out;
}
