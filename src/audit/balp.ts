import type { AuditEvent, AuditEventAgent, AuditEventEntity, CodeableConcept, Coding } from '@medplum/fhirtypes';
import { SENSITIVE_CODES } from '../auth/labels';
import type { Requester } from '../auth/requester';

/**
 * AuditEvents shaped after the IHE Basic Audit Log Patterns (BALP): the RESTful patterns Read,
 * Query, Create, Update and Delete and their Patient variants. The systems and codes are those the
 * profiles fix; displays are left out, since every stored element costs the engine at audit rates.
 */
const EVENT_TYPE = { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' };
const INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const DICOM = 'http://dicom.nema.org/resources/ontology/DCM';
const PARTICIPATION = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const BALP_ENTITY_TYPE = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';
const PURPOSE_OF_USE = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';

export type AuditAction = NonNullable<AuditEvent['action']>;

/** A resource an interaction touched: `Type/id`, with the version when one was shown or written. */
export interface TouchedResource {
  type: string;
  id: string;
  version?: number;
  /** Its sensitivity codes (labels.ts), copied into the entity and the event's own labels. */
  labels: string[];
}

/** What one interaction did, as the audit needs it; everything else about the request is left out. */
export interface AuditFacts {
  /** restful-interaction code: read, vread, search-type, create, ..., operation. */
  interaction: string;
  /** For $operations: the name and the canonical URL of the OperationDefinition. */
  operation?: { name: string; definition?: string };
  action: AuditAction;
  recorded: Date;
  /** The HTTP status answered (a Bundle entry: the entry's). */
  status: number;
  outcomeText?: string;
  /** Undefined when the request was not authenticated (401). */
  requester?: Requester;
  clientAddress?: string;
  requestId: string;
  resources: TouchedResource[];
  /** `Patient/id` of every patient whose record was touched. */
  patients: string[];
  /** The request as received, for searches, history and conditional interactions (BALP: base64). */
  query?: string;
  /** Sensitivity codes of everything touched (also of search results, which get no entity each). */
  labels: string[];
}

/** Who the server is in its own audit trail (SERVER_ID and the FHIR base it answers on). */
export interface AuditServer {
  id: string;
  baseUrl: string;
  /** AUTH_ISSUER, the system of the token subjects recorded. */
  issuer?: string;
}

/** The raw request kept in entity.query, bounded: a giant search is recorded by its start and length. */
export const MAX_RECORDED_QUERY = 8192;

function coding(system: string, code: string): Coding {
  return { system, code };
}

function concept(system: string, code: string): CodeableConcept {
  return { coding: [coding(system, code)] };
}

/** audit-event-outcome: 0 success, 4 minor failure (a refusal, 4xx), 8 serious failure (5xx). */
export function outcomeOf(status: number): NonNullable<AuditEvent['outcome']> {
  if (status < 400) return '0';
  return status < 500 ? '4' : '8';
}

export function labelCodings(codes: Iterable<string>): Coding[] {
  return [...new Set(codes)].flatMap((code) => {
    const system = SENSITIVE_CODES.get(code);
    return system ? [coding(system, code)] : [];
  });
}

/**
 * Data flows from the server for reads (the client is the Destination, BALP Read) and from the client
 * for everything else (Source: Query, Create, Update; DICOM's convention, which BALP keeps).
 */
function clientIsDestination(facts: AuditFacts): boolean {
  return facts.action === 'R';
}

/** The human (or the app acting as one) the token names: BALP's user agent, the requestor. */
function userAgent(facts: AuditFacts, server: AuditServer): AuditEventAgent | undefined {
  const requester = facts.requester;
  const subject = requester?.subject;
  const fhirUser = requester?.fhirUser ? `${requester.fhirUser.type}/${requester.fhirUser.id}` : undefined;
  // A backend service's token names the client as its subject: the client agent is then the requestor.
  if (!fhirUser && (!subject || subject === requester?.clientId)) return undefined;
  const role = facts.action === 'R' || facts.action === 'E' ? 'IRCP' : 'AUT';
  return {
    type: concept(PARTICIPATION, role),
    who: {
      ...(fhirUser ? { reference: fhirUser } : {}),
      ...(subject ? { identifier: { ...(server.issuer ? { system: server.issuer } : {}), value: subject } } : {}),
    },
    requestor: true,
  };
}

/**
 * The requester's agents: the user (when the token names one) and the client application. The
 * server is the event's `source`: BALP's separate server agent would repeat it in every event, and
 * every element stored costs the embedded engine at audit rates.
 */
function agents(facts: AuditFacts, server: AuditServer): AuditEventAgent[] {
  const destination = clientIsDestination(facts);
  const requester = facts.requester;
  const user = userAgent(facts, server);
  const purpose = requester?.purposeOfUse ? [concept(PURPOSE_OF_USE, requester.purposeOfUse)] : undefined;
  const clientName = requester?.clientId ?? (user ? undefined : requester?.subject);
  const client: AuditEventAgent = {
    type: concept(DICOM, destination ? '110152' : '110153'),
    who: clientName ? { identifier: { value: clientName } } : { display: 'unauthenticated client' },
    requestor: !user,
    ...(facts.clientAddress ? { network: { address: facts.clientAddress, type: '2' } } : {}),
    ...(!user && purpose ? { purposeOfUse: purpose } : {}),
  };
  return user ? [{ ...user, ...(purpose ? { purposeOfUse: purpose } : {}) }, client] : [client];
}

function entities(facts: AuditFacts): AuditEventEntity[] {
  const result: AuditEventEntity[] = [
    { type: coding(BALP_ENTITY_TYPE, 'XrequestId'), what: { identifier: { value: facts.requestId } } },
  ];
  for (const patient of facts.patients) {
    result.push({ type: coding(ENTITY_TYPE, '1'), role: coding(OBJECT_ROLE, '1'), what: { reference: patient } });
  }
  for (const resource of facts.resources) {
    const version = resource.version === undefined ? '' : `/_history/${resource.version}`;
    const labels = labelCodings(resource.labels);
    result.push({
      type: coding(ENTITY_TYPE, '2'),
      role: coding(OBJECT_ROLE, '4'),
      what: { reference: `${resource.type}/${resource.id}${version}` },
      ...(labels.length ? { securityLabel: labels } : {}),
    });
  }
  if (facts.query !== undefined) {
    const raw =
      facts.query.length > MAX_RECORDED_QUERY
        ? `${facts.query.slice(0, MAX_RECORDED_QUERY)}\n[${facts.query.length - MAX_RECORDED_QUERY} more characters not recorded]`
        : facts.query;
    const labels = labelCodings(facts.labels);
    result.push({
      type: coding(ENTITY_TYPE, '2'),
      role: coding(OBJECT_ROLE, '24'),
      query: Buffer.from(raw, 'utf8').toString('base64'),
      ...(labels.length ? { securityLabel: labels } : {}),
    });
  }
  return result;
}

/**
 * The AuditEvent of one interaction. When it touched sensitive records, the event carries their
 * labels in meta.security, so that only a requester who may see those records sees their audit.
 */
export function auditEvent(facts: AuditFacts, server: AuditServer): AuditEvent {
  const subtype = [coding(INTERACTION, facts.interaction)];
  if (facts.operation)
    subtype.push(coding(facts.operation.definition ?? 'urn:meds-fhir:operation', facts.operation.name));
  const security = labelCodings(facts.labels);
  return {
    resourceType: 'AuditEvent',
    ...(security.length ? { meta: { security } } : {}),
    type: EVENT_TYPE,
    subtype,
    action: facts.action,
    recorded: facts.recorded.toISOString(),
    outcome: outcomeOf(facts.status),
    ...(facts.outcomeText ? { outcomeDesc: facts.outcomeText } : {}),
    agent: agents(facts, server),
    // The server that answered: SERVER_ID, at the FHIR base it answered on; an application server.
    source: { observer: { display: `${server.id} ${server.baseUrl}` }, type: [coding(SOURCE_TYPE, '4')] },
    entity: entities(facts),
  };
}
