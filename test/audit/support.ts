import type { AuditEvent, AuditEventAgent, AuditEventEntity } from '@medplum/fhirtypes';
import type { TestServer } from '../support/server';

export const XREQUEST = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';
export const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
export const INTERACTION = 'http://hl7.org/fhir/restful-interaction';

let counter = 0;
/** A request id no other request of the run uses, to find that request's audit. */
export function requestId(label: string): string {
  counter += 1;
  return `audit-${label}-${process.pid}-${counter}`;
}

/**
 * The stored AuditEvents whose request id is `id` (or, for Bundle entries, `id#index`), read straight
 * from the database after the reads' batch is committed: the Bundle's first, then its entries'.
 */
export async function auditsOf(server: TestServer, id: string, options: { flush?: boolean } = {}) {
  if (options.flush !== false) await server.running.audit.flush();
  const escaped = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const docs = await server.running.connection.db
    .collection<{ resource: AuditEvent }>('AuditEvent')
    .find({ 'resource.entity.what.identifier.value': { $regex: `^${escaped}(#\\d+)?$` } })
    .toArray();
  // The Bundle's own event first, then its entries in order.
  const position = (event: AuditEvent) => Number(requestIdOf(event).split('#')[1] ?? -1);
  return docs.map((d) => d.resource).sort((a, b) => position(a) - position(b));
}

/** The one AuditEvent of request `id`. */
export async function auditOf(server: TestServer, id: string, options: { flush?: boolean } = {}): Promise<AuditEvent> {
  const events = await auditsOf(server, id, options);
  expect(events).toHaveLength(1);
  return events[0];
}

export function requestIdOf(event: AuditEvent): string {
  return event.entity?.find((e) => e.type?.code === 'XrequestId')?.what?.identifier?.value ?? '';
}

export const patientsOf = (event: AuditEvent): string[] =>
  (event.entity ?? [])
    .filter((e) => e.role?.code === '1')
    .map((e) => e.what?.reference as string)
    .sort();

export const dataOf = (event: AuditEvent): AuditEventEntity[] =>
  (event.entity ?? []).filter((e) => e.role?.code === '4');

export const queryOf = (event: AuditEvent): string | undefined => {
  const query = event.entity?.find((e) => e.role?.code === '24')?.query;
  return query === undefined ? undefined : Buffer.from(query, 'base64').toString('utf8');
};

export const subtypeOf = (event: AuditEvent): string | undefined =>
  event.subtype?.find((s) => s.system === INTERACTION)?.code;

/** The agent that made the request (BALP: the user, or the client when no user is named). */
export const requestorOf = (event: AuditEvent): AuditEventAgent | undefined => event.agent.find((a) => a.requestor);

/** The client application's agent (DICOM Source or Destination Role ID, with a network address). */
export const clientOf = (event: AuditEvent): AuditEventAgent | undefined =>
  event.agent.find((a) => a.type?.coding?.[0].system === DCM);
