import { badRequest, notSupported } from '../fhir/outcome';
import { checkSearchLimits, searchLimits } from '../search/limits';
import type { FhirRequest } from '../fhir/request';
import type { CurrentDocument } from '../store/documents';
import type { ServerContext } from './context';

/** Parameters that shape a response, not a match: left out of conditions and of claim keys. */
const NOT_CONDITIONS = new Set(['_format', '_pretty', '_summary', '_elements', '_count', '_sort', '_total']);

/**
 * The search of a conditional interaction, from a query string ("identifier=a|b"), a query with a
 * leading "?", or a conditional URL ("Patient?identifier=a|b" — the form of If-None-Exist and of
 * conditional references). `where` names the input in errors.
 */
export function parseConditionalQuery(
  context: ServerContext,
  text: unknown,
  type: string,
  where: string,
): [string, string][] {
  if (typeof text !== 'string') throw badRequest(`${where} must be a search query (a string)`, where);
  let query = text.trim();
  const mark = query.indexOf('?');
  if (mark >= 0) {
    const prefix = query.slice(0, mark).replace(/^.*\//, '');
    if (prefix && prefix !== type) throw badRequest(`${where} searches ${prefix}, not ${type}`, where);
    query = query.slice(mark + 1);
  }
  const all = [...new URLSearchParams(query).entries()];
  // A condition is a search: it gets the same limits before anything is compiled.
  checkSearchLimits(all, searchLimits(context.config));
  const pairs = all.filter(([name]) => !NOT_CONDITIONS.has(name));
  if (!pairs.length) throw badRequest(`${where} needs a search query such as identifier=system|value`, where);
  return pairs;
}

/**
 * The conditional-create claim of a condition: the same search written in another order, or with
 * other percent-encoding, gives the same key, so racing clients that send it contend for one claim.
 */
export function claimKey(type: string, pairs: [string, string][]): string {
  const sorted = [...pairs].sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return `${type}?${new URLSearchParams(sorted).toString()}`;
}

/** The type and search of a claim key, to re-check whether its holder still matches. */
export function parseClaimKey(key: string): { type: string; pairs: [string, string][] } {
  const mark = key.indexOf('?');
  return { type: key.slice(0, mark), pairs: [...new URLSearchParams(key.slice(mark + 1)).entries()] };
}

export async function findConditional(
  context: ServerContext,
  request: Pick<FhirRequest, 'baseUrl' | 'reads'>,
  type: string,
  pairs: [string, string][],
  limit: number,
): Promise<CurrentDocument[]> {
  if (!context.findMatches) throw notSupported('Conditional interactions need the search module');
  return context.findMatches(type, pairs, limit, request.baseUrl, request.reads);
}

/**
 * A conditional update that matched nothing becomes an update-as-create with the body's id (RESTful
 * API, "Conditional update", no matches, id provided). That id must not name a live resource: it does
 * not meet the condition, and updating it would overwrite an unrelated record. Answered like the
 * spec's "one match, different id" case: 400.
 */
export async function requireUnusedId(context: ServerContext, type: string, id: string): Promise<void> {
  const existing = await context.store.read(type, id);
  if (existing && !existing.deleted) {
    throw badRequest(
      `No ${type} matches the condition, but ${type}/${id} (the resource's id) exists and does not match it; ` +
        'leave the id out to create a new resource',
      `${type}.id`,
    );
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * After losing a claim: waits while the winner's commit is still running, and drops the claim when its
 * commit finished but nothing matches the condition any more (the resource was deleted or changed),
 * so the condition can be claimed again. The caller then searches again.
 */
export async function settleClaim(context: ServerContext, key: string, baseUrl: string): Promise<void> {
  const state = await context.store.claimState(key);
  if (!state) return;
  if (state.inFlight) {
    await pause(5 + Math.random() * 20);
    return;
  }
  const { type, pairs } = parseClaimKey(key);
  const matches = await findConditional(context, { baseUrl }, type, pairs, 1);
  if (!matches.length) await context.store.releaseClaim(state.claim);
}

/** How often a conditional write retries after losing a claim race before answering 409. */
export const CLAIM_ATTEMPTS = 20;
