import type { Resource } from '@medplum/fhirtypes';
import * as b from '../test/fixtures/checks/builders';

/**
 * The benchmark cohort of the checks engine (bench/checks.ts, in process) and of the HTTP operation
 * (bench/medication-review.ts): a year of history per patient, about 50 resources, with the patient
 * first. The index varies gaps, drugs and care events so that different checks fire.
 */
export const REVIEW_DATE = '2026-06-30';
const DATE = REVIEW_DATE;

function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

/** A year of history of patient `bench-<i>`. */
export function history(i: number): Resource[] {
  const p = `bench-${i}`;
  const onBup = i % 2 === 0;
  const main = onBup ? b.MEDS.buprenorphineNaloxone8 : b.MEDS.sertraline;
  const gap = i % 5 === 0 ? 12 : 0; // every fifth patient refills late
  const resources: Resource[] = [
    b.patient(p),
    b.condition(`${p}-dx`, b.OUD_DIAGNOSIS, p),
    b.request(`${p}-rx-main`, main, '2025-07-01', { patientId: p, dosageInstruction: [b.daily(onBup ? 2 : 1)] }),
    b.request(`${p}-rx-statin`, b.MEDS.atorvastatin, '2025-07-01', { patientId: p }),
  ];
  let day = '2025-07-01';
  for (let k = 0; k < 12; k++) {
    resources.push(b.dispense(`${p}-main-${k}`, main, day, 28, { patientId: p, prescription: `${p}-rx-main` }));
    day = addDays(day, 28 + (k % 3 === 0 ? gap : 0));
  }
  for (let k = 0; k < 12; k++) {
    resources.push(
      b.dispense(`${p}-statin-${k}`, b.MEDS.atorvastatin, addDays('2025-07-03', k * 31), 30, {
        patientId: p,
        prescription: `${p}-rx-statin`,
      }),
    );
    resources.push(
      b.encounter(
        `${p}-visit-${k}`,
        addDays('2025-07-05', k * 30),
        k === 11 && i % 3 === 0 ? 'cancelled' : 'finished',
        p,
      ),
    );
  }
  for (let k = 0; k < 6; k++)
    resources.push(b.observation(`${p}-uds-${k}`, b.UDS_BUPRENORPHINE, addDays('2025-07-10', k * 60 + (i % 4) * 7), p));
  resources.push(b.statement(`${p}-ms-1`, main, addDays(DATE, -3 - (i % 20)), 'not-taken', p));
  resources.push(b.statement(`${p}-ms-2`, main, addDays(DATE, -40), 'active', p));
  resources.push(
    b.carePlan(
      `${p}-plan`,
      [
        { description: 'Counselling', status: 'completed', due: '2026-05-15' },
        { description: 'Follow-up visit', status: i % 4 === 0 ? 'scheduled' : 'completed', due: '2026-06-15' },
        { description: 'Follow-up visit', status: 'scheduled', due: '2026-07-15' },
      ],
      p,
    ),
  );
  if (i % 7 === 0)
    resources.push(
      b.request(`${p}-rx-oxy`, b.MEDS.oxycodone10, '2026-06-01', { patientId: p, dosageInstruction: [b.daily(1, 4)] }),
    );
  if (i % 11 === 0) resources.push(b.request(`${p}-rx-benzo`, b.MEDS.alprazolam05, '2026-06-01', { patientId: p }));
  return resources;
}
