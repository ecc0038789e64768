import type { Bundle, OperationOutcome, Resource } from '@medplum/fhirtypes';

/** The signed-in user: the token lives in this module's memory only, never in web storage. */
export interface Session {
  token: string;
  /** `Practitioner/<id>`: whose care teams the worklist lists. */
  fhirUser: string;
  name: string;
}

let session: Session | undefined;
let fhirBase = '/fhir';

export function setFhirBase(base: string): void {
  fhirBase = base.replace(/\/$/, '');
}

export function setSession(next: Session | undefined): void {
  session = next;
}

export function currentSession(): Session | undefined {
  return session;
}

/** An answer other than 2xx, with the OperationOutcome's text when there is one. */
export class FhirRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function outcomeText(body: unknown): string | undefined {
  const outcome = body as OperationOutcome | undefined;
  if (outcome?.resourceType !== 'OperationOutcome') return undefined;
  return outcome.issue?.map((i) => i.details?.text ?? i.diagnostics ?? i.code).join('; ');
}

/** A request to the FHIR API with the user's token; JSON in, JSON out. */
export async function fhir<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set('Accept', 'application/fhir+json');
  if (init.body !== undefined) headers.set('Content-Type', 'application/fhir+json');
  if (session) headers.set('Authorization', `Bearer ${session.token}`);
  const response = await fetch(`${fhirBase}/${path.replace(/^\//, '')}`, { ...init, headers });
  const text = await response.text();
  const body: unknown = text ? JSON.parse(text) : undefined;
  if (!response.ok) {
    throw new FhirRequestError(response.status, outcomeText(body) ?? `${response.status} ${response.statusText}`);
  }
  return body as T;
}

/** The resources of a searchset by type (matches and includes alike). */
export function entriesOf<T extends Resource>(bundle: Bundle | undefined, type: T['resourceType']): T[] {
  return (bundle?.entry ?? []).map((e) => e.resource).filter((r): r is T => r?.resourceType === type);
}

/** Several searches in one round trip: a batch Bundle of GETs, answered in order. */
export async function batch(urls: string[]): Promise<Bundle[]> {
  const answer = await fhir<Bundle>('', {
    method: 'POST',
    body: JSON.stringify({
      resourceType: 'Bundle',
      type: 'batch',
      entry: urls.map((url) => ({ request: { method: 'GET', url } })),
    }),
  });
  return (answer.entry ?? []).map((e, i) => {
    const status = Number.parseInt(e.response?.status ?? '0', 10);
    if (status >= 300) throw new FhirRequestError(status, outcomeText(e.response?.outcome) ?? `${urls[i]}: ${status}`);
    return e.resource as Bundle;
  });
}
