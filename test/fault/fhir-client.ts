// A small FHIR HTTP client over node:http for the fault tests: every request has a timeout, and a dead
// server is an answer (status 0) rather than an exception, because the tests kill servers on purpose.
import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { adminAuthorization } from '../support/tokens';
import { Agent, request as httpRequest } from 'node:http';

export interface FhirAnswer {
  /** HTTP status; 0 when no answer came (connection refused or reset, timeout). */
  status: number;
  body?: Resource;
  etag?: string;
  /** When the answer (or the failure) arrived, Date.now(). */
  at: number;
  /** Why there was no answer, when status is 0. */
  error?: string;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export const FHIR_JSON = 'application/fhir+json';

/**
 * Keep-alive connections for speed (a trial reads a few hundred resources), in an agent of our own so
 * that `closeConnections` can end them: a pooled socket must not keep the test runner alive.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

export function closeConnections(): void {
  agent.destroy();
}

export async function fhir(
  base: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  options: RequestOptions = {},
): Promise<FhirAnswer> {
  const headers: Record<string, string> = {
    Accept: FHIR_JSON,
    Authorization: await adminAuthorization(),
    ...options.headers,
  };
  let payload: Buffer | undefined;
  if (options.body !== undefined) {
    headers['Content-Type'] = FHIR_JSON;
    payload = Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
    headers['Content-Length'] = String(payload.length);
  }
  // An absolute URL (a paging link) is used as it is.
  const url = new URL(/^https?:\/\//.test(path) ? path : `${base}/${path}`);
  return new Promise((resolve) => {
    const fail = (error: Error) => resolve({ status: 0, at: Date.now(), error: error.message });
    const request = httpRequest(url, { method, headers, agent, timeout: options.timeoutMs ?? 60_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', fail);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        try {
          resolve({
            status: response.statusCode ?? 0,
            body: text ? (JSON.parse(text) as Resource) : undefined,
            etag: response.headers.etag,
            at: Date.now(),
          });
        } catch (error) {
          fail(
            new Error(`unparsable ${response.statusCode} answer: ${(error as Error).message}: ${text.slice(0, 200)}`),
          );
        }
      });
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', fail);
    request.end(payload);
  });
}

/** The body as a Bundle; throws (so the test fails with the answer) when it is not one. */
export function bundleOf(answer: FhirAnswer): Bundle {
  if (answer.body?.resourceType !== 'Bundle') {
    throw new Error(`expected a Bundle, got ${answer.status} ${JSON.stringify(answer.body).slice(0, 500)}`);
  }
  return answer.body;
}

export function outcomeText(answer: FhirAnswer): string {
  if (answer.body?.resourceType !== 'OperationOutcome') return answer.error ?? '';
  const outcome: OperationOutcome = answer.body;
  return outcome.issue.map((i) => i.details?.text ?? i.diagnostics ?? i.code).join('; ');
}

/** One line describing an answer, for failure messages. */
export function describeAnswer(answer: FhirAnswer): string {
  const text = outcomeText(answer);
  return `${answer.status}${text ? ` (${text.slice(0, 200)})` : ''}`;
}

/** The resources of a Bundle's entries, of one type if given (a search result with _include holds several). */
export function resourcesOf<T extends Resource = Resource>(bundle: Bundle, type?: T['resourceType']): T[] {
  return (bundle.entry ?? [])
    .map((e) => e.resource)
    .filter((r): r is T => r !== undefined && (type === undefined || r.resourceType === type));
}

/** Runs `work` over `items` with at most `limit` in flight, keeping the order of results. */
export async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  });
  await Promise.all(runners);
  return results;
}
