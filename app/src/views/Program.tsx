import type { List, MeasureReport, MeasureReportGroup, Patient, Practitioner, Reference } from '@medplum/fhirtypes';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { MeasureBar } from '../charts';
import { isDay, today } from '../dates';
import { fhir, FhirRequestError } from '../fhir';
import { Figure, useCharts, useWidth } from '../Figure';
import { href } from '../route';

const MEASURE_BASE = 'https://meds-fhir.org/fhir/Measure/';

/** The shipped measures (issue 10), in the order the page shows them. */
export const MEASURES = [
  { id: 'pdc-diabetes', title: 'PDC ≥ 80%: diabetes medications' },
  { id: 'pdc-ras', title: 'PDC ≥ 80%: RAS antagonists' },
  { id: 'pdc-statins', title: 'PDC ≥ 80%: statins' },
  { id: 'oud-continuity', title: 'OUD pharmacotherapy continuity' },
  { id: 'cob', title: 'Concurrent opioid and benzodiazepine use' },
  { id: 'ohd', title: 'Opioids at high dosage' },
];

type Outcome = { report: MeasureReport } | { error: string };

interface Stratum {
  label: string;
  key: string;
  rate?: number;
  numerator?: number;
  denominator?: number;
}

function count(group: { population?: MeasureReportGroup['population'] } | undefined, code: string): number | undefined {
  return group?.population?.find((p) => p.code?.coding?.some((c) => c.code === code))?.count;
}

function rateOf(
  score: { value?: number } | undefined,
  numerator: number | undefined,
  denominator: number | undefined,
): number | undefined {
  if (typeof score?.value === 'number') return score.value;
  if (numerator !== undefined && denominator) return numerator / denominator;
  return undefined;
}

function strataOf(report: MeasureReport): Stratum[] {
  const group = report.group?.[0];
  const stratifier =
    group?.stratifier?.find((s) =>
      [s.code?.[0]?.text, ...(s.code?.[0]?.coding ?? []).map((c) => c.code)].some((t) => /prescriber/i.test(t ?? '')),
    ) ?? group?.stratifier?.[0];
  return (stratifier?.stratum ?? []).map((s) => {
    const label = s.value?.text ?? s.value?.coding?.[0]?.display ?? s.value?.coding?.[0]?.code ?? 'unknown';
    const numerator = count(s, 'numerator');
    const denominator = count(s, 'denominator');
    return {
      label,
      key: s.value?.coding?.[0]?.code ?? label,
      numerator,
      denominator,
      rate: rateOf(s.measureScore, numerator, denominator),
    };
  });
}

function evaluate(
  id: string,
  start: string,
  end: string,
  reportType: string,
  practitioner?: string,
): Promise<MeasureReport> {
  const measure = encodeURIComponent(`${MEASURE_BASE}${id}`);
  const by = practitioner ? `&practitioner=${encodeURIComponent(practitioner)}` : '';
  return fhir<MeasureReport>(
    `Measure/$evaluate-measure?measure=${measure}&periodStart=${start}&periodEnd=${end}&reportType=${reportType}${by}`,
  );
}

const PRACTITIONER = /^Practitioner\/[A-Za-z0-9\-.]+$/;

/** Prescriber strata are `Practitioner/id`: shown by name where the user may read the Practitioner. */
async function practitionerNames(refs: string[]): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  await Promise.all(
    [...new Set(refs.filter((r) => PRACTITIONER.test(r)))].map(async (ref) => {
      const p = await fhir<Practitioner>(ref).catch(() => undefined);
      const n = p?.name?.[0];
      const name = n?.text ?? [...(n?.prefix ?? []), ...(n?.given ?? []), n?.family].filter(Boolean).join(' ');
      if (name) names.set(ref, name);
    }),
  );
  return names;
}

function SubjectList({ id, start, end, stratum }: { id: string; start: string; end: string; stratum?: string }) {
  const [subjects, setSubjects] = useState<{ id: string; name: string; numerator: boolean }[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    (async () => {
      // Strata carry no subject lists in R4: a prescriber's patients are asked for with `practitioner`.
      const practitioner = stratum && PRACTITIONER.test(stratum) ? stratum : undefined;
      const report = await evaluate(id, start, end, 'subject-list', practitioner);
      const populations = report.group?.[0]?.population ?? [];
      const listOf = async (ref: Reference | undefined): Promise<List | undefined> => {
        if (!ref?.reference) return undefined;
        if (ref.reference.startsWith('#')) {
          return report.contained?.find((c) => `#${c.id}` === ref.reference && c.resourceType === 'List') as
            List | undefined;
        }
        return fhir<List>(ref.reference);
      };
      const refOf = (code: string) =>
        populations.find((p) => p.code?.coding?.some((c) => c.code === code))?.subjectResults;
      const [denominator, numerator] = await Promise.all([listOf(refOf('denominator')), listOf(refOf('numerator'))]);
      const inNumerator = new Set((numerator?.entry ?? []).map((e) => e.item.reference));
      const items = (denominator?.entry ?? numerator?.entry ?? []).map((e) => e.item);
      const rows = await Promise.all(
        items.map(async (item) => {
          const pid = item.reference?.replace(/^.*Patient\//, '') ?? '';
          const patient = await fhir<Patient>(`Patient/${encodeURIComponent(pid)}`).catch(() => undefined);
          const n = patient?.name?.[0];
          const name = n ? [...(n.given ?? []), n.family].filter(Boolean).join(' ') : (item.display ?? pid);
          return { id: pid, name, numerator: inNumerator.has(item.reference) };
        }),
      );
      setSubjects(rows);
    })().catch((e: Error) => setError(e.message));
  }, [id, start, end, stratum]);
  if (error)
    return (
      <p role="alert" class="error">
        The subject list could not be loaded: {error}
      </p>
    );
  if (!subjects) return <p class="loading">Loading the subject list…</p>;
  return (
    <section aria-labelledby="subjects-title" class="subjects">
      <h2 id="subjects-title">
        Patients of {MEASURES.find((m) => m.id === id)?.title ?? id}
        {stratum && PRACTITIONER.test(stratum) ? ` with a prescription by ${stratum}` : ''}
      </h2>
      {subjects.length === 0 ? (
        <p class="empty">No patients.</p>
      ) : (
        <ul>
          {subjects.map((s) => (
            <li key={s.id}>
              <a href={href('patient', s.id, { date: end })}>{s.name}</a> {s.numerator ? '(numerator)' : ''}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function Program({ params }: { params: URLSearchParams }) {
  const end = isDay(params.get('date')) ? (params.get('date') as string) : today();
  const start = isDay(params.get('periodStart')) ? (params.get('periodStart') as string) : `${end.slice(0, 4)}-01-01`;
  const [outcomes, setOutcomes] = useState<Record<string, Outcome> | undefined>();
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const charts = useCharts();
  const width = useWidth();
  const selectedMeasure = params.get('measure') ?? undefined;
  const selectedStratum = params.get('stratum') ?? undefined;

  useEffect(() => {
    setOutcomes(undefined);
    Promise.all(
      MEASURES.map(async (m): Promise<[string, Outcome]> => {
        try {
          return [m.id, { report: await evaluate(m.id, start, end, 'population') }];
        } catch (e) {
          const status = e instanceof FhirRequestError ? ` (HTTP ${e.status})` : '';
          return [m.id, { error: `${(e as Error).message}${status}` }];
        }
      }),
    ).then(async (entries) => {
      setOutcomes(Object.fromEntries(entries));
      const strata = entries.flatMap(([, o]) => ('report' in o ? strataOf(o.report).map((s) => s.key) : []));
      setNames(await practitionerNames(strata));
    });
  }, [start, end]);

  const overall = useMemo(() => {
    if (!outcomes) return [];
    return MEASURES.flatMap((m): MeasureBar[] => {
      const o = outcomes[m.id];
      if (!o || 'error' in o) return [];
      const g = o.report.group?.[0];
      const numerator = count(g, 'numerator');
      const denominator = count(g, 'denominator');
      const rate = rateOf(g?.measureScore, numerator, denominator);
      if (rate === undefined) return [];
      return [
        {
          measure: m.id,
          group: m.title,
          rate,
          numerator,
          denominator,
          href: href('program', undefined, { date: end, periodStart: start, measure: m.id }),
        },
      ];
    });
  }, [outcomes]);

  if (!outcomes)
    return (
      <p class="loading" aria-live="polite">
        Evaluating the measures…
      </p>
    );
  const failures = MEASURES.filter((m) => 'error' in (outcomes[m.id] ?? { error: '' }));

  return (
    <section aria-labelledby="program-title" class="program" data-rendered="true">
      <h1 id="program-title">Program</h1>
      <p class="subtitle">
        The shipped measures over {start} to {end}, all patients you may see. Click a bar for its patients.
      </p>
      {failures.length ? (
        <div class="notice-box" role="alert">
          <strong>
            {failures.length === MEASURES.length
              ? 'Population reports are not available'
              : 'Some measures could not be evaluated'}
          </strong>
          <ul>
            {failures.map((m) => (
              <li key={m.id}>
                {m.title}: {(outcomes[m.id] as { error: string }).error}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {overall.length ? (
        <Figure
          node={charts ? charts.measureBars(overall, width, 'Measure rates') : undefined}
          caption="Current rate of each measure (numerator / denominator)."
        />
      ) : null}
      {MEASURES.map((m) => {
        const o = outcomes[m.id];
        if (!o || 'error' in o) return null;
        const strata = strataOf(o.report).filter((s) => s.rate !== undefined);
        if (!strata.length) return null;
        const bars: MeasureBar[] = strata.map((s) => ({
          measure: m.id,
          group: names.get(s.key) ?? s.label,
          rate: s.rate as number,
          numerator: s.numerator,
          denominator: s.denominator,
          href: href('program', undefined, { date: end, periodStart: start, measure: m.id, stratum: s.key }),
        }));
        return (
          <section key={m.id} aria-labelledby={`m-${m.id}`} data-measure={m.id}>
            <h2 id={`m-${m.id}`}>{m.title}, by prescriber</h2>
            <Figure
              node={charts ? charts.measureBars(bars, width, `${m.title} by prescriber`) : undefined}
              caption="Rate per prescriber."
            />
            <ul class="strata">
              {bars.map((b) => (
                <li key={b.group}>
                  <a href={b.href}>
                    {b.group}: {(b.rate * 100).toFixed(1)}%
                    {b.denominator !== undefined ? ` (${b.numerator}/${b.denominator})` : ''}
                  </a>
                </li>
              ))}
            </ul>
          </section>
        );
      })}
      {selectedMeasure ? <SubjectList id={selectedMeasure} start={start} end={end} stratum={selectedStratum} /> : null}
    </section>
  );
}
