import type { Extension, OperationOutcomeIssue, Subscription } from '@medplum/fhirtypes';
import type { ServerConfig } from '../../config';
import { issue } from '../../fhir/outcome';
import { BACKPORT, PAYLOAD_CONTENTS, type PayloadContent } from './backport';
import { endpointRefusal } from './endpoint-hosts';
import { topicOf, type Topic } from './topics';

/** One `name=value` filter of a subscription, with where it was written (for error expressions). */
export interface FilterCriterion {
  name: string;
  value: string;
  expression: string;
}

/** What the workers need of a Subscription, read once from the resource. */
export interface SubscriptionSpec {
  id: string;
  topic: Topic;
  filters: FilterCriterion[];
  content: PayloadContent;
  endpoint: string;
  /** channel.header as name/value pairs ("Authorization: Bearer x"). */
  headers: [string, string][];
  heartbeatMs?: number;
  timeoutMs?: number;
  maxCount: number;
}

/** Most events one notification carries when the Subscription sets no backport-max-count. */
const DEFAULT_MAX_COUNT = 20;

type Primitive = { extension?: Extension[] } | undefined;

function extensionsOf(element: Primitive, url: string): Extension[] {
  return (element?.extension ?? []).filter((e) => e?.url === url);
}

/**
 * A filter as the IG writes it (`Type?name=value`, several joined by `&`) or bare (`name=value`);
 * the type, when given, must be one the topic is about.
 */
function parseFilter(text: string, topic: Topic, at: string, issues: OperationOutcomeIssue[]): FilterCriterion[] {
  const query = text.includes('?') ? text.slice(text.indexOf('?') + 1) : text;
  const type = text.includes('?') ? text.slice(0, text.indexOf('?')) : undefined;
  if (type !== undefined && !topic.resourceTypes.includes(type)) {
    issues.push(
      issue(
        'error',
        'value',
        `Filter "${text}" is on ${type}; topic ${topic.url} is about ${topic.resourceTypes.join(', ')}`,
        at,
      ),
    );
    return [];
  }
  const criteria: FilterCriterion[] = [];
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const name = eq > 0 ? decodeURIComponent(pair.slice(0, eq)) : '';
    const value = eq > 0 ? decodeURIComponent(pair.slice(eq + 1)) : '';
    if (!name || !value) {
      issues.push(issue('error', 'value', `Filter "${text}" is not of the form name=value`, at));
      continue;
    }
    if (!topic.filters.includes(name) && !topic.searchParameterFilters) {
      issues.push(
        issue('error', 'value', `Topic ${topic.url} has no filter "${name}" (it has ${topic.filters.join(', ')})`, at),
      );
      continue;
    }
    criteria.push({ name, value, expression: at });
  }
  return criteria;
}

function positiveExtension(
  channel: Subscription['channel'],
  url: string,
  key: 'valueUnsignedInt' | 'valuePositiveInt',
) {
  const value = extensionsOf(channel as Primitive, url)[0]?.[key];
  return typeof value === 'number' && value > 0 ? value : undefined;
}

/**
 * Reads a Subscription as this server runs it, with what is wrong with it as issues (a write that has
 * any is refused with 422): a topic this server publishes, its filters, a rest-hook channel on an
 * allowed host and a payload content.
 */
export function readSubscription(
  subscription: Subscription,
  config: ServerConfig,
): { spec?: SubscriptionSpec; issues: OperationOutcomeIssue[] } {
  const issues: OperationOutcomeIssue[] = [];
  const topic = topicOf(subscription.criteria);
  if (!topic) {
    issues.push(
      issue(
        'error',
        'value',
        `Subscription.criteria must be the canonical URL of a topic this server publishes (see /metadata), got "${subscription.criteria ?? ''}"`,
        'Subscription.criteria',
      ),
    );
  }
  const filters: FilterCriterion[] = [];
  const criteriaElement = (subscription as { _criteria?: Primitive })._criteria;
  (criteriaElement?.extension ?? []).forEach((e, i) => {
    if (e?.url !== BACKPORT.filterCriteria || !topic) return;
    const at = `Subscription.criteria.extension[${i}]`;
    if (typeof e.valueString !== 'string')
      issues.push(issue('error', 'value', 'A filter criteria extension needs valueString', at));
    else filters.push(...parseFilter(e.valueString, topic, at, issues));
  });
  const channel = subscription.channel;
  const customType = extensionsOf(
    channel?.type as unknown as Primitive,
    'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-channel-type',
  );
  if (channel?.type !== 'rest-hook' || customType.length) {
    issues.push(
      issue(
        'error',
        'not-supported',
        `Only rest-hook channels are supported, got "${channel?.type ?? ''}"`,
        'Subscription.channel.type',
      ),
    );
  }
  const refusal = endpointRefusal(channel?.endpoint, config);
  if (refusal) issues.push(issue('error', 'value', refusal, 'Subscription.channel.endpoint'));
  const payloadElement = (channel as { _payload?: Primitive } | undefined)?._payload;
  const content = extensionsOf(payloadElement, BACKPORT.payloadContent)[0]?.valueCode;
  if (!PAYLOAD_CONTENTS.includes(content as PayloadContent)) {
    issues.push(
      issue(
        'error',
        'value',
        `channel.payload needs the backport-payload-content extension with empty, id-only or full-resource, got "${content ?? ''}"`,
        'Subscription.channel.payload',
      ),
    );
  }
  if (content !== 'empty' && channel?.payload !== undefined && !/^application\/(fhir\+)?json$/.test(channel.payload)) {
    issues.push(
      issue(
        'error',
        'not-supported',
        `Notifications are sent as application/fhir+json, not "${channel.payload}"`,
        'Subscription.channel.payload',
      ),
    );
  }
  const headers: [string, string][] = [];
  (channel?.header ?? []).forEach((h, i) => {
    const colon = typeof h === 'string' ? h.indexOf(':') : -1;
    const name = colon > 0 ? h.slice(0, colon).trim() : '';
    if (!/^[A-Za-z0-9-]+$/.test(name) || /^(content-type|content-length|host|x-meds-fhir-signature)$/i.test(name)) {
      issues.push(
        issue(
          'error',
          'value',
          `channel.header "${h}" is not "Name: value" with a name the server may let a client set`,
          `Subscription.channel.header[${i}]`,
        ),
      );
    } else headers.push([name, h.slice(colon + 1).trim()]);
  });
  if (issues.length || !topic) return { issues };
  const heartbeat = positiveExtension(channel, BACKPORT.heartbeatPeriod, 'valueUnsignedInt');
  const timeout = positiveExtension(channel, BACKPORT.timeout, 'valueUnsignedInt');
  return {
    issues,
    spec: {
      id: subscription.id as string,
      topic,
      filters,
      content: content as PayloadContent,
      endpoint: channel.endpoint as string,
      headers,
      ...(heartbeat ? { heartbeatMs: heartbeat * 1000 } : {}),
      ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
      maxCount: positiveExtension(channel, BACKPORT.maxCount, 'valuePositiveInt') ?? DEFAULT_MAX_COUNT,
    },
  };
}
