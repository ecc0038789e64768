import type { Coding, Resource } from '@medplum/fhirtypes';

export const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

/** The meta.security codes that make a resource sensitive (../shared/SECURITY.md), by system. */
export const SENSITIVE_CODES: ReadonlyMap<string, string> = new Map([
  ['42CFRPart2', ACT_CODE],
  ['SUD', ACT_CODE],
  ['ETH', ACT_CODE],
  ['ETHUD', ACT_CODE],
  ['OPIOIDUD', ACT_CODE],
  ['PSY', ACT_CODE],
  ['PSYTHPN', ACT_CODE],
  ['HIV', ACT_CODE],
  ['R', CONFIDENTIALITY],
  ['V', CONFIDENTIALITY],
]);

/** Where the codes sit in a stored document (current or history): what the access filter tests. */
export const LABEL_CODE_PATH = 'resource.meta.security.code';

/** The sensitivity codes of a resource's labels (system and code both match the table). */
export function sensitiveCodesOf(resource: Resource | undefined): string[] {
  const codes = new Set<string>();
  for (const label of resource?.meta?.security ?? []) {
    if (typeof label?.code === 'string' && SENSITIVE_CODES.get(label.code) === label.system) codes.add(label.code);
  }
  return [...codes];
}

/** Confidentiality codes from least to most restrictive (v3 Confidentiality: U < L < M < N < R < V). */
const CONFIDENTIALITY_ORDER = ['U', 'L', 'M', 'N', 'R', 'V'];

/**
 * The confidentiality a searchset or history Bundle carries: the highest of its entries', where a
 * sensitive label without a confidentiality code counts as R (restricted), as SECURITY.md asks.
 */
export function bundleConfidentiality(resources: (Resource | undefined)[]): Coding | undefined {
  let highest = -1;
  for (const resource of resources) {
    for (const label of resource?.meta?.security ?? []) {
      if (label?.system === CONFIDENTIALITY && typeof label.code === 'string') {
        highest = Math.max(highest, CONFIDENTIALITY_ORDER.indexOf(label.code));
      }
    }
    if (sensitiveCodesOf(resource).length) highest = Math.max(highest, CONFIDENTIALITY_ORDER.indexOf('R'));
  }
  if (highest < CONFIDENTIALITY_ORDER.indexOf('R')) return undefined;
  return { system: CONFIDENTIALITY, code: CONFIDENTIALITY_ORDER[highest] };
}
