import type { DetectedIssue, Parameters, ParametersParameter, Task } from '@medplum/fhirtypes';

/** Patient/[id]/$medication-review's answer, read as the page uses it: the numbers are shown as the server gives them. */

export interface Supply {
  reference: string;
  fillDate: string;
  start: string;
  end: string;
}

export interface Adherence {
  classCode: string;
  classTitle: string;
  periodStart: string;
  periodEnd: string;
  daysInPeriod: number;
  daysCovered: number;
  pdc: number;
  adherent: boolean;
  lastCoveredDay?: string;
  eligible: boolean;
  supplies: Supply[];
  gaps: { start: string; end: string }[];
}

export type Finding = DetectedIssue | Task;

export interface Review {
  adherence: Adherence[];
  findings: Finding[];
  mme?: { total: number; requests: { reference: string; mme: number }[] };
  /** Some of the patient's records were hidden from this review by the access rules. */
  withheld: boolean;
}

function part(p: ParametersParameter, name: string): ParametersParameter | undefined {
  return p.part?.find((x) => x.name === name);
}

function parts(p: ParametersParameter, name: string): ParametersParameter[] {
  return (p.part ?? []).filter((x) => x.name === name);
}

function adherenceOf(p: ParametersParameter): Adherence {
  const coding = part(p, 'medicationClass')?.valueCoding;
  return {
    classCode: coding?.code ?? '',
    classTitle: coding?.display ?? coding?.code ?? '',
    periodStart: part(p, 'periodStart')?.valueDate ?? '',
    periodEnd: part(p, 'periodEnd')?.valueDate ?? '',
    daysInPeriod: part(p, 'daysInPeriod')?.valueInteger ?? 0,
    daysCovered: part(p, 'daysCovered')?.valueInteger ?? 0,
    pdc: part(p, 'pdc')?.valueDecimal ?? 0,
    adherent: part(p, 'adherent')?.valueBoolean ?? false,
    lastCoveredDay: part(p, 'lastCoveredDay')?.valueDate,
    eligible: part(p, 'eligible')?.valueBoolean ?? false,
    supplies: parts(p, 'supply').map((s) => ({
      reference: part(s, 'reference')?.valueReference?.reference ?? '',
      fillDate: part(s, 'fillDate')?.valueDate ?? '',
      start: part(s, 'start')?.valueDate ?? '',
      end: part(s, 'end')?.valueDate ?? '',
    })),
    gaps: parts(p, 'gap').map((g) => ({
      start: part(g, 'start')?.valueDate ?? '',
      end: part(g, 'end')?.valueDate ?? '',
    })),
  };
}

export function readReview(out: Parameters): Review {
  const params = out.parameter ?? [];
  const mme = params.find((p) => p.name === 'mme');
  return {
    adherence: params.filter((p) => p.name === 'adherence').map(adherenceOf),
    findings: params.filter((p) => p.name === 'finding').map((p) => p.resource as Finding),
    mme: mme && {
      total: part(mme, 'total')?.valueDecimal ?? 0,
      requests: parts(mme, 'request').map((r) => ({
        reference: part(r, 'reference')?.valueReference?.reference ?? '',
        mme: part(r, 'mme')?.valueDecimal ?? 0,
      })),
    },
    withheld: params.some((p) => p.name === 'withheld' && p.valueBoolean === true),
  };
}

/** PDC as a percentage with the server's four decimals kept (0.9091 → "90.91%"). */
export function pdcText(pdc: number): string {
  return `${(Math.round(pdc * 10000) / 100).toFixed(2)}%`;
}
