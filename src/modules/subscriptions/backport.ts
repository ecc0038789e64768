/** Canonical URLs of the HL7 Subscriptions R5 Backport IG (R4) that this module reads and writes. */
const SD = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const OD = 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition';

export const BACKPORT = {
  subscriptionProfile: `${SD}/backport-subscription`,
  statusProfile: `${SD}/backport-subscription-status-r4`,
  notificationProfile: `${SD}/backport-subscription-notification-r4`,
  filterCriteria: `${SD}/backport-filter-criteria`,
  payloadContent: `${SD}/backport-payload-content`,
  heartbeatPeriod: `${SD}/backport-heartbeat-period`,
  timeout: `${SD}/backport-timeout`,
  maxCount: `${SD}/backport-max-count`,
  topicCanonical: `${SD}/capabilitystatement-subscriptiontopic-canonical`,
  statusOperation: `${OD}/backport-subscription-status`,
  eventsOperation: `${OD}/backport-subscription-events`,
} as const;

/**
 * The signing secret of a new Subscription, returned once in the create response (never stored on the
 * resource, never returned by a read).
 */
export const SIGNING_SECRET_EXTENSION = 'https://meds-fhir.org/fhir/StructureDefinition/subscription-signing-secret';

/** The header carrying HMAC-SHA256(secret, body) on every POST to an endpoint. */
export const SIGNATURE_HEADER = 'X-Meds-Fhir-Signature';

export type PayloadContent = 'empty' | 'id-only' | 'full-resource';
export const PAYLOAD_CONTENTS: readonly PayloadContent[] = ['empty', 'id-only', 'full-resource'];
