import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { checkJsonValue, resourceLimits } from '../fhir/json-limits';
import { issue, outcome, preconditionFailed, unprocessable, VersionRaceError } from '../fhir/outcome';
import { sameNumberTexts } from '../fhir/number-text';
import type { FhirRequest } from '../fhir/request';
import type { CurrentDocument } from '../store/documents';
import { VersionConflictError, type SideDocument, type StagedWrite } from '../store/journal';
import { authorizeStagedWrite, withWriteLabels } from '../auth/write-access';
import type { PlannedWrite } from '../store/resource-store';
import type { Interaction, ServerContext } from './context';

/** Runs every interceptor's write check (validation, labelling); any error rejects the write with 422. */
export async function checkWrite(
  context: ServerContext,
  request: FhirRequest,
  interaction: Interaction,
  resource: Resource,
): Promise<OperationOutcomeIssue[]> {
  // Before any interceptor walks it: what validating, indexing and storing it can cost is bounded.
  checkJsonValue(resource, resourceLimits(context.config));
  const issues: OperationOutcomeIssue[] = [];
  for (const interceptor of context.interceptors) {
    if (interceptor.checkWrite) issues.push(...(await interceptor.checkWrite(resource, { request, interaction })));
  }
  if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) throw unprocessable(issues);
  return issues;
}

/**
 * Commits and turns a lost version race into the spec's answer: 412 when the client named the version
 * it expected (If-Match); when it did not, a VersionRaceError that the dispatcher answers by running
 * the interaction again on the new version (409, HAPI's ResourceVersionConflictException, only once
 * its retries are spent).
 */
export async function commitWrites(
  context: ServerContext,
  request: FhirRequest,
  writes: PlannedWrite[],
  options: { versionWasExpected: boolean },
): Promise<CurrentDocument[]> {
  const policy = request.access;
  const labels = policy?.requester.writeLabels;
  const labelled = labels?.length
    ? writes.map((w) => (w.resource ? { ...w, resource: withWriteLabels(w.resource, labels) } : w))
    : writes;
  // Every version is authorized as staged (compartments computed), before anything is written.
  const authorize = (w: StagedWrite) => authorizeStagedWrite(policy, w.type, w.previous, w.next);
  if (request.unitOfWork) {
    const staged = request.unitOfWork.stage(labelled, authorize);
    request.written?.push(...staged.map((doc, i) => ({ type: labelled[i].type, doc })));
    return staged;
  }
  // The request's audit record is committed with its writes (src/modules/audit.ts): both or neither.
  const staged = context.store.stage(labelled);
  const companions = companionsOf(context, request, staged);
  let docs: CurrentDocument[];
  try {
    const check = (w: StagedWrite) => {
      if (!companions.includes(w)) authorize(w);
    };
    const all = await context.store.commitStaged(
      [...staged, ...companions],
      check,
      commitDocumentsOf(context, request, staged),
    );
    docs = all.slice(0, staged.length);
  } catch (error) {
    if (error instanceof VersionConflictError) {
      const text = `${error.type}/${error.id} was changed by another request while this one was being processed`;
      if (options.versionWasExpected) throw preconditionFailed(text);
      throw new VersionRaceError(409, outcome([issue('error', 'conflict', text)]));
    }
    throw error;
  }
  const committed = docs.map((doc, i) => ({ type: labelled[i].type, doc }));
  request.written?.push(...committed);
  for (const interceptor of context.interceptors) await interceptor.afterCommit?.(committed);
  return docs;
}

/** What interceptors store in the same commit as `staged` (the audit record), staged in turn. */
export function companionsOf(context: ServerContext, request: FhirRequest, staged: StagedWrite[]): StagedWrite[] {
  const planned = context.interceptors.flatMap((i) => i.companionWrites?.(request, staged) ?? []);
  return planned.length ? context.store.stage(planned) : [];
}

/** What interceptors write to internal collections in the same commit as `staged`. */
export function commitDocumentsOf(context: ServerContext, request: FhirRequest, staged: StagedWrite[]): SideDocument[] {
  return context.interceptors.flatMap((i) => i.commitDocuments?.(request, staged) ?? []);
}

/**
 * Two versions are the same content when they differ only in meta.versionId and meta.lastUpdated;
 * a decimal written with another precision (1.5 and 1.50) is a change.
 */
export function sameContent(a: Resource, b: Resource): boolean {
  return canonicalJson(stripVersionMeta(a)) === canonicalJson(stripVersionMeta(b)) && sameNumberTexts(a, b);
}

function stripVersionMeta(resource: Resource): Resource {
  if (!resource.meta) return resource;
  const { versionId: _v, lastUpdated: _l, ...meta } = resource.meta;
  const copy = { ...resource, meta } as Resource;
  if (Object.keys(meta).length === 0) delete copy.meta;
  return copy;
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : 1)))
      : v,
  );
}
