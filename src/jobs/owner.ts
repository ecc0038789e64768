import type { Requester } from '../auth/requester';
import type { StoredRequester } from '../auth/stored-requester';

/** Whether `requester` is the one who started the job: the same subject and client. */
export function isOwner(job: { requester: StoredRequester }, requester: Requester): boolean {
  if (job.requester.unrestricted || requester.unrestricted)
    return job.requester.unrestricted === requester.unrestricted;
  return (
    job.requester.subject !== undefined &&
    job.requester.subject === requester.subject &&
    job.requester.clientId === requester.clientId
  );
}
