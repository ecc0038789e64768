import type { List, MeasureReport, MeasureReportGroup, Reference } from '@medplum/fhirtypes';
import { POPULATION_CODES, POPULATION_SYSTEM, type CompiledMeasure, type PopulationCode } from './definition';
import type { MeasurementPeriod } from './evaluate';
import type { PopulationCounts, Tally } from './tally';

export type ReportType = 'subject' | 'subject-list' | 'population';

export interface ReportRequest {
  period: MeasurementPeriod;
  reportType: ReportType;
  /** `Patient/id` or `Group/id`. */
  subject?: string;
  /** `Practitioner/id`. */
  practitioner?: string;
}

/** R4 MeasureReport.type for each reportType of $evaluate-measure. */
const REPORT_TYPES: Record<ReportType, MeasureReport['type']> = {
  subject: 'individual',
  'subject-list': 'subject-list',
  population: 'summary',
};

function populationCodes(measure: CompiledMeasure, g: number): PopulationCode[] {
  return POPULATION_CODES.filter((code) => measure.groups[g].populations[code] || code === 'denominator');
}

/** Proportion: numerator / (denominator − exclusions); absent when nobody is left in the denominator. */
function score(counts: PopulationCounts['counts']): MeasureReportGroup['measureScore'] {
  const denominator = (counts.denominator ?? 0) - (counts['denominator-exclusion'] ?? 0);
  if (denominator <= 0) return undefined;
  return { value: Math.round(((counts.numerator ?? 0) / denominator) * 10000) / 10000 };
}

const populationCode = (code: PopulationCode) => ({ coding: [{ system: POPULATION_SYSTEM, code }] });

export function measureReport(
  measure: CompiledMeasure,
  tally: Tally,
  request: ReportRequest,
  date: Date,
): MeasureReport {
  const contained: List[] = [];
  const canonical = measure.url
    ? `${measure.url}${measure.version ? `|${measure.version}` : ''}`
    : `Measure/${measure.resource.id}`;
  const group = measure.groups.map((compiled, g): MeasureReportGroup => {
    const t = tally.groups[g];
    const codes = populationCodes(measure, g);
    return {
      ...(compiled.id ? { id: compiled.id } : {}),
      ...(compiled.code ? { code: compiled.code } : {}),
      population: codes.map((code) => {
        const list = t.subjects ? subjectList(contained, g, code, t.subjects[code] ?? []) : undefined;
        return { code: populationCode(code), count: t.counts[code] ?? 0, ...(list ? { subjectResults: list } : {}) };
      }),
      ...(score(t.counts) ? { measureScore: score(t.counts) } : {}),
      ...(compiled.stratifiers.length
        ? {
            stratifier: compiled.stratifiers.map((s, i) => {
              const stratum = [...(t.strata[i]?.values ?? [])]
                .sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0))
                .map(({ value, counts }) => ({
                  value: { text: value },
                  population: codes.map((code) => ({ code: populationCode(code), count: counts[code] ?? 0 })),
                  ...(score(counts) ? { measureScore: score(counts) } : {}),
                }));
              return { ...(s.code ? { code: [s.code] } : {}), ...(stratum.length ? { stratum } : {}) };
            }),
          }
        : {}),
    };
  });
  return {
    resourceType: 'MeasureReport',
    ...(contained.length ? { contained } : {}),
    status: 'complete',
    type: REPORT_TYPES[request.reportType],
    measure: canonical,
    ...(request.subject ? { subject: { reference: request.subject } } : {}),
    date: date.toISOString(),
    ...(request.practitioner ? { reporter: { reference: request.practitioner } } : {}),
    period: { start: request.period.start, end: request.period.end },
    group,
  };
}

/** A contained List of the subjects of one population, referenced from population.subjectResults. */
function subjectList(contained: List[], g: number, code: PopulationCode, ids: string[]): Reference<List> {
  const id = `group-${g}-${code}`;
  contained.push({
    resourceType: 'List',
    id,
    status: 'current',
    mode: 'snapshot',
    title: `Subjects in ${code}`,
    // FHIR JSON has no empty arrays: an empty population says why its list is empty instead.
    ...(ids.length
      ? { entry: ids.map((patient) => ({ item: { reference: `Patient/${patient}` } })) }
      : {
          emptyReason: {
            coding: [{ system: 'http://terminology.hl7.org/CodeSystem/list-empty-reason', code: 'nilknown' }],
          },
        }),
  });
  return { reference: `#${id}` };
}
