import { createHmac } from 'node:crypto';
import { SIGNATURE_HEADER } from './backport';

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>`: what a receiver recomputes with its secret. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

export interface SendResult {
  ok: boolean;
  /** Why it failed, for the Subscription's `error` and the log. */
  error?: string;
}

/**
 * POSTs one notification. Redirects are not followed (an allowed host must not send us elsewhere); a
 * 2xx answer is delivery; anything else, a timeout or a refused connection is a failed attempt.
 */
export async function postNotification(
  endpoint: string,
  body: string,
  secret: string | undefined,
  headers: [string, string][],
  timeoutMs: number,
): Promise<SendResult> {
  const sent: Record<string, string> = Object.fromEntries(headers);
  sent['Content-Type'] = 'application/fhir+json';
  if (secret) sent[SIGNATURE_HEADER] = signature(secret, body);
  try {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: sent,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The body is not needed; reading it frees the connection.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { ok: true };
    return { ok: false, error: `the endpoint answered ${response.status}` };
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === 'TimeoutError') return { ok: false, error: `the endpoint did not answer within ${timeoutMs} ms` };
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { ok: false, error: `the endpoint could not be reached${cause ? ` (${cause})` : ''}` };
  }
}
