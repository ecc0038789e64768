import type { DetectedIssue, Patient, Task } from '@medplum/fhirtypes';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { daysBetween, today } from '../dates';
import { entriesOf, fhir, batch, currentSession } from '../fhir';
import { checkOf, findingText, isAcknowledged, patientOf, priorityRank, priorityText, raisedOn } from '../findings';
import type { Finding } from '../review';
import { href } from '../route';
import { prefetchCharts } from '../Figure';
import { patientName } from '../names';

interface Row {
  finding: Finding;
  patientId: string;
  patientName: string;
  check: { code: string; title: string };
}

const OPEN_ISSUES = 'preliminary,final';
const OPEN_TASKS = 'requested,accepted,in-progress';

async function loadWorklist(practitioner: string): Promise<Row[]> {
  const team = encodeURIComponent(practitioner);
  const [issues, tasks] = await batch([
    `DetectedIssue?care-team=${team}&status=${OPEN_ISSUES}&_sort=-priority-rank&_include=DetectedIssue:patient&_count=500`,
    `Task?care-team=${team}&status=${OPEN_TASKS}&_sort=-priority-rank,-authored-on&_include=Task:patient&_count=500`,
  ]);
  const patients = new Map<string, Patient>();
  for (const b of [issues, tasks]) for (const p of entriesOf<Patient>(b, 'Patient')) patients.set(p.id as string, p);
  const findings: Finding[] = [...entriesOf<DetectedIssue>(issues, 'DetectedIssue'), ...entriesOf<Task>(tasks, 'Task')];
  return findings
    .map((finding) => {
      const patientId = patientOf(finding) ?? '';
      const patient = patients.get(patientId);
      return { finding, patientId, patientName: patient ? patientName(patient) : patientId, check: checkOf(finding) };
    })
    .sort(byPriorityThenAge);
}

/** Most pressing first; among equals, the oldest first (it has waited longest). */
function byPriorityThenAge(a: Row, b: Row): number {
  return (
    priorityRank(b.finding) - priorityRank(a.finding) ||
    (raisedOn(a.finding) ?? '').localeCompare(raisedOn(b.finding) ?? '') ||
    a.patientName.localeCompare(b.patientName)
  );
}

/** Acknowledging is an ordinary update (README "Standing findings"): the server keeps the team's status. */
async function acknowledge(finding: Finding, practitioner: string): Promise<Finding> {
  const now = new Date().toISOString();
  const next: Finding =
    finding.resourceType === 'Task'
      ? { ...finding, status: 'accepted', owner: { reference: practitioner } }
      : {
          ...finding,
          status: 'final',
          mitigation: [
            ...(finding.mitigation ?? []),
            { action: { text: 'Acknowledged from the worklist' }, date: now, author: { reference: practitioner } },
          ],
        };
  return fhir<Finding>(`${finding.resourceType}/${finding.id}`, {
    method: 'PUT',
    headers: { 'If-Match': `W/"${finding.meta?.versionId ?? ''}"`, Prefer: 'return=representation' },
    body: JSON.stringify(next),
  });
}

export function Worklist({ date }: { date?: string }) {
  const session = currentSession();
  const [rows, setRows] = useState<Row[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [check, setCheck] = useState<string>('all');
  const [busy, setBusy] = useState<string | undefined>();
  const [notice, setNotice] = useState<string | undefined>();

  useEffect(() => {
    if (!session) return;
    loadWorklist(session.fhirUser).then(setRows, (e: Error) => setError(e.message));
  }, [session?.fhirUser]);
  // The chart code is not part of the first download; it is fetched while the clinician reads the list.
  useEffect(() => {
    if (rows) setTimeout(prefetchCharts, 0);
  }, [rows !== undefined]);

  const counts = useMemo(() => {
    const map = new Map<string, { title: string; count: number }>();
    for (const r of rows ?? []) {
      const entry = map.get(r.check.code) ?? { title: r.check.title, count: 0 };
      entry.count++;
      map.set(r.check.code, entry);
    }
    return [...map.entries()].sort((a, b) => b[1].count - a[1].count || a[1].title.localeCompare(b[1].title));
  }, [rows]);

  if (error)
    return (
      <p role="alert" class="error">
        The worklist could not be loaded: {error}
      </p>
    );
  if (!rows)
    return (
      <p class="loading" aria-live="polite">
        Loading the worklist…
      </p>
    );
  const shown = rows.filter((r) => check === 'all' || r.check.code === check);
  const reference = date ?? today();

  const onAcknowledge = async (row: Row) => {
    if (!session) return;
    setBusy(row.finding.id);
    setNotice(undefined);
    try {
      const updated = await acknowledge(row.finding, session.fhirUser);
      setRows((current) => current?.map((r) => (r.finding.id === row.finding.id ? { ...r, finding: updated } : r)));
      setNotice(`${row.check.title} for ${row.patientName} acknowledged.`);
    } catch (e) {
      setNotice(`Could not acknowledge: ${(e as Error).message}`);
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <section aria-labelledby="worklist-title">
      <h1 id="worklist-title">Worklist</h1>
      <p class="subtitle">
        Open findings of the patients on your care teams, most pressing first. {rows.length} finding
        {rows.length === 1 ? '' : 's'}.
      </p>
      <div class="filters" role="group" aria-label="Filter by check">
        <button type="button" aria-pressed={check === 'all'} onClick={() => setCheck('all')}>
          All <span class="count">{rows.length}</span>
        </button>
        {counts.map(([code, { title, count }]) => (
          <button
            type="button"
            key={code}
            data-check={code}
            aria-pressed={check === code}
            onClick={() => setCheck(code)}
          >
            {title} <span class="count">{count}</span>
          </button>
        ))}
      </div>
      <p aria-live="polite" class="notice">
        {notice}
      </p>
      {shown.length === 0 ? (
        <p class="empty">No open findings. </p>
      ) : (
        <table class="worklist">
          <caption class="visually-hidden">Open findings</caption>
          <thead>
            <tr>
              <th scope="col">Priority</th>
              <th scope="col">Patient</th>
              <th scope="col">Check</th>
              <th scope="col">Detail</th>
              <th scope="col">Raised</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span class="visually-hidden">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {shown.map((row) => {
              const raised = raisedOn(row.finding);
              const acknowledged = isAcknowledged(row.finding);
              return (
                <tr key={row.finding.id} data-finding={row.finding.id} data-check={row.check.code}>
                  <td>
                    <span class={`priority rank-${priorityRank(row.finding)}`}>{priorityText(row.finding)}</span>
                  </td>
                  <td>
                    <a href={href('patient', row.patientId, { date })}>{row.patientName}</a>
                  </td>
                  <td>{row.check.title}</td>
                  <td>{findingText(row.finding)}</td>
                  <td>
                    {raised ? (
                      <time dateTime={raised}>
                        {raised} ({Math.max(0, daysBetween(raised, reference))} d)
                      </time>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td class="status" data-status={row.finding.status}>
                    {acknowledged ? 'acknowledged' : 'new'}
                  </td>
                  <td>
                    {acknowledged ? null : (
                      <button
                        type="button"
                        class="acknowledge"
                        disabled={busy === row.finding.id}
                        onClick={() => onAcknowledge(row)}
                        aria-label={`Acknowledge ${row.check.title} for ${row.patientName}`}
                      >
                        Acknowledge
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
