import type { Extension, OperationOutcomeIssue, Resource, Subscription } from '@medplum/fhirtypes';
import { FhirError, issue } from '../../fhir/outcome';
import type { CapabilityContributor, Interceptor, ServerContext } from '../../rest/context';
import { definitionsOf } from '../definitions-feed';
import { BACKPORT, SIGNING_SECRET_EXTENSION } from './backport';
import { compileFilter } from './filters';
import { commitDocuments } from './outbox';
import { subscriptionOperations } from './operations';
import { SubscriptionRegistry } from './registry';
import { readSubscription } from './spec';
import { SubscriptionCollections } from './state';
import { TOPICS } from './topics';
import { startWorkers, type Workers } from './workers';

export interface SubscriptionsModule {
  collections: SubscriptionCollections;
  registry: SubscriptionRegistry;
  /** Stops this process's workers (their current round finishes first). */
  stop(): Promise<void>;
}

/** Secrets of Subscriptions created by commits whose responses have not gone out yet (id → secret). */
const PENDING_SECRETS_MAX = 1000;

/**
 * Topic-based subscriptions as the R4 Subscriptions Backport IG has them (README, "Subscriptions"):
 * the topics in /metadata, Subscription writes checked (422) and given their delivery state and
 * signing secret in their commit, every event of a topic written to an outbox in the commit of its
 * version, and workers in every process that fan events out to subscriptions and deliver them.
 */
export async function registerSubscriptions(context: ServerContext): Promise<SubscriptionsModule> {
  const collections = new SubscriptionCollections(context.store.db);
  await collections.ensureIndexes();
  await context.store.ensureIndexes(['Subscription']);
  const registry = new SubscriptionRegistry(context, collections);
  const secrets = new Map<string, string>();
  let workers: Workers | undefined;

  const interceptor: Interceptor = {
    name: 'subscriptions',
    checkWrite: async (resource, { interaction }) => {
      if (resource.resourceType !== 'Subscription') return [];
      return subscriptionProblems(context, resource, interaction.kind === 'create');
    },
    commitDocuments: (request, staged) => {
      // With no Subscription anywhere, writes carry nothing extra (the registry hears of a new one
      // from this process's commit at once, from another's within the definitions feed's second).
      if (!registry.size && !staged.some((w) => w.type === 'Subscription')) return [];
      const sides = commitDocuments(collections, request, staged, secrets);
      while (secrets.size > PENDING_SECRETS_MAX) secrets.delete(secrets.keys().next().value as string);
      return sides;
    },
    // The committing process starts on the events at once rather than at its next poll.
    afterCommit: () => {
      if (registry.size) workers?.nudge();
    },
    afterInteraction: (_request, interaction, result) => {
      const body = result.response?.body as Resource | undefined;
      if (body?.resourceType !== 'Subscription' || !body.id) return;
      const secret = secrets.get(body.id);
      if (!secret || (interaction.kind !== 'create' && interaction.kind !== 'update')) return;
      secrets.delete(body.id);
      // Only in this response: the secret is never stored on the resource, so no read returns it.
      const extension: Extension = { url: SIGNING_SECRET_EXTENSION, valueString: secret };
      (result.response as { body: Resource }).body = { ...body, extension: [...(body.extension ?? []), extension] };
    },
  };
  context.interceptors.push(interceptor);
  context.operations.push(...subscriptionOperations(collections, registry));
  const capabilities: CapabilityContributor = {
    resourceExtensions: (type) =>
      type === 'Subscription' ? TOPICS.map((t) => ({ url: BACKPORT.topicCanonical, valueCanonical: t.url })) : [],
  };
  context.capabilities.push(capabilities);

  await definitionsOf(context).subscribe(['Subscription'], (change) => registry.apply(change));
  if (context.config.subscriptions.delivery) workers = startWorkers(context, collections, registry);
  return {
    collections,
    registry,
    async stop() {
      await workers?.stop();
    },
  };
}

/**
 * What makes a Subscription write unacceptable: what readSubscription finds, a search-parameter filter
 * the focus type does not have, or a status only the server may set (a client asks for `requested`,
 * and the server moves it to `active` or `error`; `off` stops it).
 */
async function subscriptionProblems(
  context: ServerContext,
  subscription: Subscription,
  creating: boolean,
): Promise<OperationOutcomeIssue[]> {
  const { spec, issues } = readSubscription(subscription, context.config);
  if (spec) {
    for (const filter of spec.filters) {
      if (spec.topic.filters.includes(filter.name)) continue;
      for (const type of spec.topic.resourceTypes) {
        try {
          await compileFilter(context, type, filter);
        } catch (error) {
          const text = error instanceof FhirError ? error.outcome.issue?.[0]?.details?.text : undefined;
          issues.push(
            issue(
              'error',
              'value',
              `Filter ${filter.name}=${filter.value} does not apply to ${type}${text ? `: ${text}` : ''}`,
              filter.expression,
            ),
          );
        }
      }
    }
  }
  const status = subscription.status;
  if (creating && status !== 'requested' && status !== 'off') {
    issues.push(
      issue(
        'error',
        'value',
        `A new Subscription has status requested (the server activates it after a handshake) or off, not "${status}"`,
        'Subscription.status',
      ),
    );
  } else if (!creating && status !== 'requested' && status !== 'off' && subscription.id) {
    const stored = await context.store.read('Subscription', subscription.id);
    const current = stored && !stored.deleted ? (stored.resource as Subscription).status : undefined;
    if (current !== status) {
      issues.push(
        issue(
          'error',
          'value',
          `Only the server sets status ${status}; a client sets requested or off (it is ${current ?? 'not stored'})`,
          'Subscription.status',
        ),
      );
    }
  }
  return issues;
}
