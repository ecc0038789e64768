import type { DetectedIssue } from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import { SETTINGS_COLLECTION } from '../../fhir/page-token';
import type { ServerContext } from '../../rest/context';
import type { CurrentDocument } from '../../store/documents';
import { FINDING_KEY_SYSTEM } from './model';
import { writeFindings } from './writer';

const DONE = 'findings-mitigated-recancelled';

/**
 * Earlier versions closed a DetectedIssue with status `mitigated` (R5's code, which the definitions
 * we validate with carried for R4 by mistake; R4 binds ObservationStatus). Such a finding is no longer
 * valid R4, so a care team's update to it would be refused: once per database, each is written again
 * as `cancelled`, keeping its closing reason and date, by the server as any finding write is
 * (If-Match on the version read: an update made meanwhile wins and is left as it is).
 */
export async function recancelMitigatedFindings(context: ServerContext, logger: Logger): Promise<number> {
  const db = context.store.db;
  const settings = db.collection<{ _id: string; at?: Date }>(SETTINGS_COLLECTION);
  if (await settings.findOne({ _id: DONE })) return 0;
  const docs = await context.store
    .directReader()
    .find<CurrentDocument>(
      'DetectedIssue',
      { 'resource.status': 'mitigated', 'resource.identifier.system': FINDING_KEY_SYSTEM, deleted: { $ne: true } },
      { projection: { resource: 1 } },
    );
  let written = 0;
  for (const doc of docs) {
    const previous = doc.resource as DetectedIssue;
    // R4's value, which the R5 type of @medplum/fhirtypes does not list.
    const resource = { ...previous, status: 'cancelled' as DetectedIssue['status'] };
    try {
      await writeFindings(context, [{ resource, previous }], `findings:recancel:${previous.id}`);
      written++;
    } catch (error) {
      logger.warn({ err: error, id: previous.id }, 'a mitigated finding could not be closed as cancelled');
    }
  }
  await settings.updateOne({ _id: DONE }, { $set: { at: new Date() } }, { upsert: true });
  if (written) logger.info({ written }, 'findings closed as mitigated by earlier versions are now cancelled');
  return written;
}
