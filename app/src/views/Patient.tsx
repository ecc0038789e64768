import type { MedicationDispense } from '@medplum/fhirtypes';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { TimelineData } from '../charts';
import { addDays, daysBetween, isDay, today, windowStart } from '../dates';
import { Figure, useCharts, useWidth } from '../Figure';
import { checkOf, COMBINATION_CHECKS, evidenceOf, findingText, priorityText } from '../findings';
import { patientName } from '../names';
import {
  activitiesOf,
  dispenseEnd,
  isPhq9,
  loadPatient,
  medicationName,
  observationDate,
  screenResult,
  type PatientData,
} from '../patient-data';
import { pdcText, type Finding } from '../review';
import { href } from '../route';

const WINDOWS = [6, 12, 24, 36];
const EXCLUDED_DISPENSE = new Set(['cancelled', 'entered-in-error', 'declined', 'stopped']);

function clip<T extends { start: string; end: string }>(items: T[], from: string, to: string): T[] {
  return items
    .filter((i) => i.end >= from && i.start <= to)
    .map((i) => ({ ...i, start: i.start < from ? from : i.start, end: i.end > to ? to : i.end }));
}

function firstRef(refs: { reference?: string }[] | undefined): string | undefined {
  return refs?.[0]?.reference?.replace(/^.*\/(MedicationRequest\/[^/]+)$/, '$1');
}

/** The timeline's rows from the review's supplies and gaps (the server's PQA shifting) and the raw records. */
function timelineOf(
  data: PatientData,
  from: string,
  date: string,
  highlighted: Set<string>,
  width: number,
): TimelineData {
  const to = addDays(date, 30);
  const { review } = data;
  const dispenseById = new Map(data.dispenses.map((d) => [`MedicationDispense/${d.id}`, d]));
  const laneOf = new Map<string, string>();
  for (const a of review.adherence) {
    for (const s of a.supplies) {
      laneOf.set(s.reference, a.classTitle);
      const rx = firstRef(dispenseById.get(s.reference)?.authorizingPrescription);
      if (rx) laneOf.set(rx, a.classTitle);
    }
  }
  const nameOf = (reference: string) => {
    const d = dispenseById.get(reference);
    if (d) return medicationName(d);
    const r = data.requests.find((x) => `MedicationRequest/${x.id}` === reference);
    return r ? medicationName(r) : reference;
  };
  const tracked = review.adherence.flatMap((a) =>
    a.supplies.map((s) => ({
      lane: a.classTitle,
      start: s.start,
      end: s.end,
      fillDate: s.fillDate,
      shifted: s.start !== s.fillDate,
      tracked: true,
      label: nameOf(s.reference),
      reference: s.reference,
    })),
  );
  const untracked = data.dispenses
    .filter((d) => !laneOf.has(`MedicationDispense/${d.id}`) && !EXCLUDED_DISPENSE.has(d.status ?? ''))
    .flatMap((d: MedicationDispense) => {
      const fillDate = (d.whenHandedOver ?? d.whenPrepared)?.slice(0, 10);
      const last = dispenseEnd(d);
      if (!fillDate || !last || fillDate > date) return [];
      const rx = firstRef(d.authorizingPrescription);
      return [
        {
          lane: (rx && laneOf.get(rx)) ?? medicationName(d),
          start: fillDate,
          end: last,
          fillDate,
          shifted: false,
          tracked: false,
          label: medicationName(d),
          reference: `MedicationDispense/${d.id}`,
        },
      ];
    });
  const fills = [...tracked, ...untracked];
  const prescriptions = data.requests.flatMap((r) => {
    const reference = `MedicationRequest/${r.id}`;
    const start = (r.dispenseRequest?.validityPeriod?.start ?? r.authoredOn)?.slice(0, 10);
    if (!start || start > date) return [];
    const lane = laneOf.get(reference) ?? medicationName(r);
    const laneEnd = fills.filter((f) => f.lane === lane).reduce((m, f) => (f.end > m ? f.end : m), start);
    const end = r.dispenseRequest?.validityPeriod?.end?.slice(0, 10) ?? (r.status === 'active' ? date : laneEnd);
    return [{ lane, start, end, label: medicationName(r), reference }];
  });
  const gaps = review.adherence.flatMap((a) =>
    a.gaps.map((g) => ({ lane: a.classTitle, start: g.start, end: g.end, days: daysBetween(g.start, g.end) + 1 })),
  );
  const missed = data.statements
    .filter((s) => s.status === 'not-taken')
    .flatMap((s) => {
      const day = (s.effectiveDateTime ?? s.effectivePeriod?.start ?? s.dateAsserted)?.slice(0, 10);
      if (!day) return [];
      const rx = firstRef(s.basedOn);
      const lane =
        (rx && laneOf.get(rx)) ?? (rx && prescriptions.find((p) => p.reference === rx)?.lane) ?? medicationName(s);
      return [
        {
          lane,
          date: day,
          label: s.statusReason?.[0]?.text ?? medicationName(s),
          reference: `MedicationStatement/${s.id}`,
        },
      ];
    })
    .filter((m) => m.date >= from && m.date <= to);
  const clippedFills = clip(fills, from, to);
  const clippedRx = clip(prescriptions, from, to);
  const clippedGaps = clip(gaps, from, to);
  const lanes = [
    ...new Set([
      ...review.adherence.map((a) => a.classTitle),
      ...clippedRx.map((p) => p.lane),
      ...clippedFills.map((f) => f.lane),
      ...missed.map((m) => m.lane),
    ]),
  ];
  return {
    from,
    to,
    date,
    lanes,
    prescriptions: clippedRx,
    fills: clippedFills,
    gaps: clippedGaps,
    missed,
    highlighted,
    width,
  };
}

/** Daily MME over the window: each opioid prescription's MME (from the review) on the days its fills cover. */
function mmeSeriesOf(data: PatientData, from: string, to: string): { date: string; mme: number }[] {
  const requests = data.review.mme?.requests ?? [];
  if (!requests.length) return [];
  const perDay = new Map<string, number>();
  for (const { reference, mme } of requests) {
    const spans = data.dispenses
      .filter((d) => firstRef(d.authorizingPrescription) === reference && !EXCLUDED_DISPENSE.has(d.status ?? ''))
      .flatMap((d) => {
        const start = d.whenHandedOver?.slice(0, 10);
        const end = dispenseEnd(d);
        return start && end ? [{ start, end }] : [];
      });
    const days = new Set<string>();
    for (const s of clip(spans, from, to)) for (let d = s.start; d <= s.end; d = addDays(d, 1)) days.add(d);
    for (const d of days) perDay.set(d, (perDay.get(d) ?? 0) + mme);
  }
  const series: { date: string; mme: number }[] = [];
  let previous = -1;
  for (let d = from; d <= to; d = addDays(d, 1)) {
    const value = Math.round((perDay.get(d) ?? 0) * 100) / 100;
    if (value !== previous) series.push({ date: d, mme: value });
    previous = value;
  }
  series.push({ date: addDays(to, 1), mme: previous });
  return series;
}

export function PatientView({ id, params }: { id: string; params: URLSearchParams }) {
  const date = isDay(params.get('date')) ? (params.get('date') as string) : today();
  const months = WINDOWS.includes(Number(params.get('months'))) ? Number(params.get('months')) : 12;
  const from = windowStart(date, months);
  const [data, setData] = useState<PatientData | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [selected, setSelected] = useState<Finding | undefined>();
  const charts = useCharts();
  const width = useWidth();

  useEffect(() => {
    setData(undefined);
    setError(undefined);
    setSelected(undefined);
    loadPatient(id, date, from).then(setData, (e: Error) => setError(e.message));
  }, [id, date, from]);

  const highlighted = useMemo(() => {
    const refs = new Set(selected ? evidenceOf(selected).map((r) => r.replace(/#.*$/, '')) : []);
    return refs;
  }, [selected]);

  const timelineNode = useMemo(
    () => (charts && data ? charts.timeline(timelineOf(data, from, date, highlighted, width)) : undefined),
    [charts, data, highlighted, width],
  );
  const pdcNode = useMemo(
    () =>
      charts && data && data.review.adherence.length
        ? charts.pdcBars(
            data.review.adherence.map((a) => ({ title: a.classTitle, pdc: a.pdc, adherent: a.adherent })),
            width,
          )
        : undefined,
    [charts, data, width],
  );
  const screens = useMemo(
    () =>
      (data?.observations ?? [])
        .filter((o) => !isPhq9(o) && observationDate(o))
        .filter(
          (o) =>
            o.category?.some((c) => c.coding?.some((x) => x.code === 'laboratory')) ||
            /urine|screen|drug/i.test(o.code?.text ?? o.code?.coding?.[0]?.display ?? ''),
        )
        .map((o) => ({
          date: observationDate(o) as string,
          analyte: (o.code?.text ?? o.code?.coding?.[0]?.display ?? 'result').replace(/\s*\[.*$/, ''),
          ...screenResult(o),
        }))
        .filter((r) => r.date >= from && r.date <= date),
    [data, from, date],
  );
  const phq = useMemo(
    () =>
      (data?.observations ?? [])
        .filter(isPhq9)
        .map((o) => ({ date: observationDate(o) ?? '', score: o.valueInteger ?? o.valueQuantity?.value ?? NaN }))
        .filter((r) => r.date >= from && r.date <= date && Number.isFinite(r.score))
        .sort((a, b) => a.date.localeCompare(b.date)),
    [data, from, date],
  );
  const mmeSeries = useMemo(() => (data ? mmeSeriesOf(data, from, date) : []), [data, from, date]);

  if (error)
    return (
      <p role="alert" class="error">
        This patient could not be loaded: {error}
      </p>
    );
  if (!data)
    return (
      <p class="loading" aria-live="polite">
        Loading the patient…
      </p>
    );

  const { patient, review } = data;
  const combinations = review.findings.filter((f) => COMBINATION_CHECKS.has(checkOf(f).code));
  const activities = activitiesOf(data.carePlans, date);

  const navigate = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    location.hash = href('patient', id, { date: String(form.get('date')), months: String(form.get('months')) });
  };

  return (
    <article aria-labelledby="patient-title" class="patient" data-rendered="true" data-patient={patient.id}>
      <p>
        <a href={href('worklist', undefined, { date: params.get('date') ?? undefined })}>← Worklist</a>
      </p>
      <h1 id="patient-title">{patientName(patient)}</h1>
      <p class="subtitle">
        {[patient.gender, patient.birthDate && `born ${patient.birthDate}`, `Patient/${patient.id}`]
          .filter(Boolean)
          .join(' · ')}
      </p>
      <form class="controls" onSubmit={navigate}>
        <label>
          Review date <input type="date" name="date" value={date} required />
        </label>
        <label>
          Window{' '}
          <select name="months" value={String(months)}>
            {WINDOWS.map((m) => (
              <option value={String(m)} key={m}>
                {m} months
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Show</button>
      </form>
      {review.withheld ? (
        <div class="withheld" role="note" aria-label="Withheld records">
          <strong>Some of this patient's records are withheld from you.</strong> They are sensitive (for example
          substance use disorder treatment records under 42 CFR Part 2) and you have no consent or clearance to see
          them. The timeline, adherence figures and findings below are computed without them.
        </div>
      ) : null}

      <section aria-labelledby="findings-title">
        <h2 id="findings-title">Findings on {date}</h2>
        {review.findings.length === 0 ? (
          <p class="empty">No findings.</p>
        ) : (
          <ul class="findings">
            {review.findings.map((f) => {
              const { code, title } = checkOf(f);
              const pressed = selected?.id === f.id;
              return (
                <li key={f.id}>
                  <button
                    type="button"
                    class="finding"
                    data-check={code}
                    aria-pressed={pressed}
                    onClick={() => setSelected(pressed ? undefined : f)}
                  >
                    <span class="priority">{priorityText(f)}</span> <strong>{title}</strong>: {findingText(f)}
                  </button>
                  {pressed ? (
                    <p class="evidence" aria-live="polite">
                      Evidence, outlined on the timeline: {evidenceOf(f).join(', ') || 'none referenced'}
                    </p>
                  ) : null}
                </li>
              );
            })}
          </ul>
        )}
      </section>

      <section aria-labelledby="timeline-title">
        <h2 id="timeline-title">
          Medication timeline, {from} to {date}
        </h2>
        <ul class="legend" aria-label="Legend">
          <li>
            <span class="swatch rx" aria-hidden="true" /> prescription
          </li>
          <li>
            <span class="swatch fill" aria-hidden="true" /> fill (days supply)
          </li>
          <li>
            <span class="swatch shifted" aria-hidden="true" /> fill shifted after an overlap (tick: fill date)
          </li>
          <li>
            <span class="swatch untracked" aria-hidden="true" /> fill of a class without adherence tracking
          </li>
          <li>
            <span class="swatch gap" aria-hidden="true" /> gap
          </li>
          <li>
            <span aria-hidden="true">✕</span> missed doses
          </li>
          <li>
            <span aria-hidden="true">┆</span> review date
          </li>
        </ul>
        <Figure node={timelineNode} id="timeline" caption="Click a finding above to outline its evidence." />
      </section>

      <section aria-labelledby="adherence-title">
        <h2 id="adherence-title">Adherence over the window (PDC, PQA method, 80% threshold)</h2>
        {review.adherence.length === 0 ? (
          <p class="empty">No adherence-tracked class was filled in the window.</p>
        ) : (
          <>
            <Figure node={pdcNode} caption="Proportion of days covered per class; the dashed line is 80%." />
            <table class="adherence">
              <thead>
                <tr>
                  <th scope="col">Class</th>
                  <th scope="col">PDC</th>
                  <th scope="col">Days covered</th>
                  <th scope="col">Treatment period</th>
                  <th scope="col">Gaps</th>
                  <th scope="col">Overlaps shifted</th>
                </tr>
              </thead>
              <tbody>
                {review.adherence.map((a) => {
                  const shifted = a.supplies.filter((s) => s.start !== s.fillDate);
                  return (
                    <tr key={a.classCode} data-class={a.classCode}>
                      <th scope="row">{a.classTitle}</th>
                      <td class="pdc" data-pdc={String(a.pdc)}>
                        {pdcText(a.pdc)} {a.adherent ? '' : <span class="flag">below 80%</span>}
                      </td>
                      <td>
                        {a.daysCovered} of {a.daysInPeriod}
                      </td>
                      <td>
                        {a.periodStart} – {a.periodEnd}
                      </td>
                      <td>
                        {a.gaps.length === 0 ? (
                          'none'
                        ) : (
                          <details>
                            <summary>
                              {a.gaps.length} gap{a.gaps.length === 1 ? '' : 's'},{' '}
                              {a.gaps.reduce((n, g) => n + daysBetween(g.start, g.end) + 1, 0)} days
                            </summary>
                            <ul class="gaps">
                              {a.gaps.map((g) => (
                                <li key={g.start} class="gap" data-start={g.start} data-end={g.end}>
                                  {g.start} – {g.end} ({daysBetween(g.start, g.end) + 1} d)
                                </li>
                              ))}
                            </ul>
                          </details>
                        )}
                      </td>
                      <td>
                        {shifted.length === 0 ? (
                          'none'
                        ) : (
                          <details>
                            <summary>
                              {shifted.length} fill{shifted.length === 1 ? '' : 's'} shifted
                            </summary>
                            <ul class="overlaps">
                              {shifted.map((s) => (
                                <li key={s.reference} class="overlap" data-reference={s.reference} data-start={s.start}>
                                  filled {s.fillDate}, counted from {s.start}
                                </li>
                              ))}
                            </ul>
                          </details>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </>
        )}
      </section>

      <section aria-labelledby="combinations-title">
        <h2 id="combinations-title">Active combinations that matter</h2>
        {combinations.length === 0 ? (
          <p class="empty">None: no opioid with a benzodiazepine, no buprenorphine with naltrexone.</p>
        ) : (
          <ul class="combinations">
            {combinations.map((f) => (
              <li key={f.id} data-check={checkOf(f).code}>
                <strong>{checkOf(f).title}</strong>: {findingText(f)}
              </li>
            ))}
          </ul>
        )}
      </section>

      {review.mme ? (
        <section aria-labelledby="mme-title">
          <h2 id="mme-title">Opioid dosage</h2>
          <p class="mme" data-mme={String(review.mme.total)}>
            Daily MME on {date}: <strong>{review.mme.total}</strong>
          </p>
          <Figure
            node={charts && mmeSeries.length ? charts.mmeSeries(mmeSeries, from, date, width) : undefined}
            caption="Daily MME of the opioid prescriptions over the days their fills cover; dashed lines at 50 and 90."
          />
        </section>
      ) : null}

      <section aria-labelledby="screens-title">
        <h2 id="screens-title">Drug screens</h2>
        {screens.length === 0 ? (
          <p class="empty">No drug screens in the window.</p>
        ) : (
          <Figure
            node={charts ? charts.screens(screens, from, date, width) : undefined}
            caption={`${screens.length} results: triangles positive, circles negative, squares other or no value.`}
          />
        )}
      </section>

      <section aria-labelledby="phq-title">
        <h2 id="phq-title">PHQ-9</h2>
        {phq.length === 0 ? (
          <p class="empty">No PHQ-9 scores in the window.</p>
        ) : (
          <Figure
            node={charts ? charts.phq9(phq, from, date, width) : undefined}
            caption={`Latest ${phq[phq.length - 1].score} on ${phq[phq.length - 1].date}; bands: minimal, mild, moderate, moderately severe, severe.`}
          />
        )}
      </section>

      <section aria-labelledby="activities-title">
        <h2 id="activities-title">Care-plan activities</h2>
        {activities.length === 0 ? (
          <p class="empty">No care plan.</p>
        ) : (
          <table class="activities">
            <thead>
              <tr>
                <th scope="col">Activity</th>
                <th scope="col">Scheduled</th>
                <th scope="col">State on {date}</th>
              </tr>
            </thead>
            <tbody>
              {activities.map((a) => (
                <tr key={a.key} data-state={a.state} class={highlighted.has(a.plan) ? 'lit' : undefined}>
                  <td>{a.description}</td>
                  <td>{a.scheduled ?? '—'}</td>
                  <td>
                    <span class={`state ${a.state}`}>{a.state}</span>
                    {a.state === 'overdue' ? ` (${a.overdueDays} d)` : ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </article>
  );
}
