import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { sensitiveCodesOf } from '../auth/labels';
import { compartmentsOf } from '../fhir/compartments';
import type { FhirError } from '../fhir/outcome';
import type { FhirRequest, FhirResponse, UnitOfWork } from '../fhir/request';
import type { AuditFacts } from './balp';
import { ACTIONS, MAX_OUTCOME_TEXT, METHOD_INTERACTIONS, outcomeText } from './interactions';

const LOCATION = /\/([A-Z][A-Za-z]{0,63})\/([A-Za-z0-9\-.]{1,64})\/_history\/(\d{1,16})$/;

/** An entry's audit, kept until its Bundle is answered: only then is its outcome known. */
export interface EntryDraft {
  index: number;
  facts: AuditFacts;
  /** The transaction attempt it was staged in (a lost race runs every entry again). */
  work?: UnitOfWork;
}

/**
 * The entries' audits, outcomes settled now that the Bundle is answered. A transaction that failed
 * stored none of its entries, whatever they answered before; entries answered without running
 * (ifNoneExist matched while preparing, or refused before routing) are audited from the response.
 */
export function entryFacts(
  request: FhirRequest,
  result: { response?: FhirResponse; error?: FhirError },
  bundleFacts: AuditFacts,
  drafts: EntryDraft[],
  commit: { stored: Set<number>; committed: boolean },
): AuditFacts[] {
  const transaction = (request.body as Bundle | undefined)?.type !== 'batch';
  const kept = transaction ? currentAttempt(drafts, true) : drafts;
  const byIndex = new Map<number, AuditFacts>();
  for (const draft of kept) {
    if (commit.stored.has(draft.index)) continue;
    let facts = draft.facts;
    if (transaction && !commit.committed && result.error && draft.work && facts.status < 400) {
      facts = {
        ...facts,
        status: result.error.status,
        outcomeText: `Not stored: the transaction failed (${outcomeText(result.error)})`,
        resources: facts.resources.map(({ version: _v, ...unversioned }) => unversioned),
      };
    }
    byIndex.set(draft.index, facts);
  }
  const requestEntries = (request.body as Bundle | undefined)?.entry;
  const responseEntries = (result.response?.body as Bundle | undefined)?.entry;
  if (Array.isArray(responseEntries)) {
    responseEntries.forEach((entry, index) => {
      if (byIndex.has(index) || commit.stored.has(index)) return;
      const requested = Array.isArray(requestEntries) ? requestEntries[index] : undefined;
      byIndex.set(index, unroutedEntryFacts(bundleFacts, requested, entry, `${request.requestId}#${index}`));
    });
  }
  return [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, facts]) => facts);
}

/**
 * The drafts of a transaction's last attempt (a lost race runs every entry again, in a new unit of
 * work): those staged in it, and with `reads` also those that ran without one (after the commit).
 */
export function currentAttempt(drafts: EntryDraft[], reads = false): EntryDraft[] {
  const lastWork = [...drafts].reverse().find((d) => d.work)?.work;
  const latest = new Map<number, EntryDraft>();
  for (const draft of drafts) {
    if (draft.work ? draft.work === lastWork : reads) latest.set(draft.index, draft);
  }
  return [...latest.values()];
}

/** The audit of an entry that no handler ran, from its request and the answer the Bundle gave it. */
function unroutedEntryFacts(
  bundleFacts: AuditFacts,
  requested: BundleEntry | undefined,
  answered: BundleEntry,
  requestId: string,
): AuditFacts {
  const method = requested?.request?.method ?? 'GET';
  const kind = METHOD_INTERACTIONS[method] ?? 'read';
  const status = Number.parseInt(answered.response?.status ?? '', 10) || 500;
  const location = LOCATION.exec(answered.response?.location ?? '');
  const resource = answered.resource as Resource | undefined;
  const labels = resource ? sensitiveCodesOf(resource) : [];
  const query = [`${method} ${requested?.request?.url ?? ''}`];
  if (requested?.request?.ifNoneExist) query.push(`If-None-Exist: ${requested.request.ifNoneExist}`);
  const issueText = answered.response?.outcome?.issue?.[0]?.details?.text;
  return {
    ...bundleFacts,
    interaction: kind,
    operation: undefined,
    action: ACTIONS[kind],
    status,
    outcomeText: status >= 400 && issueText ? `HTTP ${status}: ${issueText}`.slice(0, MAX_OUTCOME_TEXT) : undefined,
    requestId,
    resources: location ? [{ type: location[1], id: location[2], version: Number(location[3]), labels }] : [],
    patients: resource ? compartmentsOf(resource) : [],
    labels,
    query: query.join('\n'),
  };
}
