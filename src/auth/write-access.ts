import type { Coding, Resource } from '@medplum/fhirtypes';
import { forbidden, notFound } from '../fhir/outcome';
import type { CurrentDocument } from '../store/documents';
import type { AccessPolicy } from './access-policy';
import { authorizeWrite } from './authorize';
import { sensitiveCodesOf } from './labels';

/** What a write replaces: hidden means it is answered exactly as if it did not exist. */
export function visibleOrAbsent(
  policy: AccessPolicy | undefined,
  type: string,
  previous: CurrentDocument | null,
): CurrentDocument | null {
  if (!policy || !previous) return previous;
  return policy.sees(type, previous) ? previous : null;
}

/** For update and patch: a resource that exists but is hidden from the requester is a 404. */
export function requireVisibleForWrite(
  policy: AccessPolicy | undefined,
  type: string,
  id: string,
  previous: CurrentDocument | null,
): void {
  if (previous && visibleOrAbsent(policy, type, previous) === null) throw notFound(`${type}/${id} is not known`);
}

/** The labels a registered client puts on everything it writes (a Part 2 program's EHR). */
export function withWriteLabels(resource: Resource, labels: readonly Coding[] | undefined): Resource {
  if (!labels?.length) return resource;
  const security = [...(resource.meta?.security ?? [])];
  for (const label of labels) {
    if (!security.some((s) => s.system === label.system && s.code === label.code)) security.push({ ...label });
  }
  return { ...resource, meta: { ...resource.meta, security } } as Resource;
}

/**
 * A staged write the requester may make: the version it replaces is one it can see, the new one is
 * one it could read afterwards (so a `patient/` token cannot move a resource out of its compartment),
 * and sensitivity labels are added or removed only by a requester cleared for them.
 */
export function authorizeStagedWrite(
  policy: AccessPolicy | undefined,
  type: string,
  previous: CurrentDocument | null,
  next: CurrentDocument,
): void {
  if (!policy || policy.requester.unrestricted) return;
  const replaces = previous && !previous.deleted ? previous : null;
  if (!replaces) authorizeWrite(policy, type, 'c');
  if (previous && !policy.sees(type, previous)) throw notFound(`${type}/${next._id} is not known`);
  if (next.deleted) return;
  const before = new Set(sensitiveCodesOf(replaces?.resource));
  const after = new Set(sensitiveCodesOf(next.resource));
  const own = new Set((policy.requester.writeLabels ?? []).map((l) => l.code));
  const changed = [...after].filter((c) => !before.has(c) && !own.has(c));
  changed.push(...[...before].filter((c) => !after.has(c)));
  if (changed.length && !policy.clearedFor(changed)) {
    throw forbidden(
      `Adding or removing the sensitivity label${changed.length > 1 ? 's' : ''} ${changed.join(', ')} needs a token cleared for ${changed.length > 1 ? 'them' : 'it'}`,
    );
  }
  if (!policy.sees(type, next)) {
    throw forbidden(`The token could not read ${type}/${next._id} as written (outside its patients, labels or scope)`);
  }
}
