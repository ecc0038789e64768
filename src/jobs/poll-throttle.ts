import { issue, outcome } from '../fhir/outcome';
import type { FhirResponse } from '../fhir/request';
import type { BackgroundJob, JobStore } from './job-store';

/**
 * The 429 of a status request that came sooner than the Retry-After the last answer gave (Bulk Data
 * Access: "polled too frequently"), or nothing when the poll is on time (and is then recorded). The
 * last poll is kept in the job, so every server process sharing the database throttles alike; the
 * allowed clock skew between them is the client's slack.
 */
export async function throttledPoll<T extends BackgroundJob>(
  jobs: JobStore<T>,
  job: T,
  retryAfterSeconds: number,
  clockSkewMs: number,
  now = new Date(),
): Promise<FhirResponse | undefined> {
  const minMs = retryAfterSeconds * 1000;
  if (await jobs.recordPoll(job._id, now, minMs - clockSkewMs)) return undefined;
  const waited = now.getTime() - (job.polledAt?.getTime() ?? 0);
  return {
    status: 429,
    headers: { retryAfter: Math.max(1, Math.ceil((minMs - waited) / 1000)) },
    body: outcome([
      issue('error', 'throttled', `Polled too often: wait Retry-After (${retryAfterSeconds} s) between polls`),
    ]),
  };
}
