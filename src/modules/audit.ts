import type { AuditEvent } from '@medplum/fhirtypes';
import { methodNotAllowed, serviceUnavailable, type FhirError } from '../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../fhir/request';
import type { CurrentDocument } from '../store/documents';
import { AuditLog, type AuditLogOptions } from '../audit/audit-log';
import { auditEvent, type AuditFacts, type AuditServer } from '../audit/balp';
import { currentAttempt, entryFacts, type EntryDraft } from '../audit/bundle-entries';
import { ACTIONS, bundleTypeOf, METHOD_INTERACTIONS, outcomeText } from '../audit/interactions';
import { rawRequest, touchedBy } from '../audit/touched';
import type { Interaction, ServerContext } from '../rest/context';
import { matchRoute } from '../rest/router';
import { newId } from '../store/resource-store';

/** The audit trail is append-only through the API: these are 405 for everyone, in Bundles too. */
const IMMUTABLE_INTERACTIONS = new Set<string>(['update', 'patch', 'delete']);
const AUDIT_TYPE = 'AuditEvent';

/** Interactions whose audit is durable before their answer (they may change data). */
const WRITES = new Set<Interaction['kind']>(['create', 'update', 'patch', 'delete', 'batch', 'transaction']);

/** A request in the pipeline, as its commits find it (through the copies handlers make of it). */
interface InFlight {
  request: FhirRequest;
  interaction: Interaction;
  /** AuditEvents staged into its commits: committed when the version staged with them was written. */
  companions: { anchor: CurrentDocument; entries: number[] }[];
}

/**
 * The audit trail (issue 11; IHE BALP): every interaction but `metadata`, allowed or refused, and
 * every Bundle entry becomes an AuditEvent stored through the resource store (indexed, searchable,
 * never through the dispatcher, so auditing neither audits itself nor needs a token). Writes are
 * durable before their answer, reads within a second (src/audit/audit-log.ts). AuditEvents cannot be
 * updated, patched or deleted through the API.
 */
export function registerAudit(context: ServerContext, options: Partial<AuditLogOptions> = {}): AuditLog {
  const { logger, store, config } = context;
  // Never changed through the API, so each event is its only version (src/store/resource-store.ts).
  store.declareImmutable(AUDIT_TYPE);
  const log = new AuditLog({
    store: async (events) => {
      // The id is given once, so a batch tried again stores each event once.
      for (const event of events) event.id ??= newId();
      await store.appendImmutable(AUDIT_TYPE, events);
    },
    onError: (error, waiting) => logger.error({ err: error, waiting }, 'audit events could not be stored'),
    onLost: (count, error) => logger.error({ err: error, lost: count }, 'audit events were given up'),
    ...options,
  });
  const audited = new WeakSet<FhirRequest>();
  const drafts = new WeakMap<FhirRequest, EntryDraft[]>();
  // Keyed by the request's `written` array, which the copies handlers make of a request share.
  const inFlight = new WeakMap<object, InFlight>();
  /** Per Bundle, the entries whose events were committed with their own writes. */
  const storedEntries = new WeakMap<FhirRequest, Set<number>>();
  const storedOf = (bundle: FhirRequest): Set<number> => {
    let set = storedEntries.get(bundle);
    if (!set) storedEntries.set(bundle, (set = new Set()));
    return set;
  };

  const serverFor = (request: FhirRequest): AuditServer => ({
    id: config.serverId,
    baseUrl: request.baseUrl,
    issuer: config.auth.issuer,
  });

  const factsOf = (
    request: FhirRequest,
    interaction: Interaction,
    result: { response?: FhirResponse; error?: FhirError },
    written = request.written ?? [],
  ): AuditFacts => {
    const operation = interaction.operation
      ? context.operations.find((o) => o.name === interaction.operation)
      : undefined;
    // A Bundle's own event says that it ran and how it ended; its entries' events say what they touched.
    const touched =
      interaction.kind === 'transaction'
        ? { resources: [], patients: [], labels: [] }
        : touchedBy(request, interaction, result.response, written);
    return {
      interaction: bundleTypeOf(request, interaction) ?? interaction.kind,
      ...(interaction.operation
        ? { operation: { name: interaction.operation, definition: operation?.definition } }
        : {}),
      action: ACTIONS[interaction.kind],
      recorded: new Date(),
      status: result.response?.status ?? result.error?.status ?? 500,
      ...(result.error ? { outcomeText: outcomeText(result.error) } : {}),
      requester: request.requester,
      clientAddress: request.remoteAddress,
      requestId: request.requestId,
      ...touched,
    };
  };

  const durableFor = (interaction: Interaction): boolean => {
    if (WRITES.has(interaction.kind)) return true;
    if (interaction.kind !== 'operation') return false;
    return context.operations.find((o) => o.name === interaction.operation)?.affectsState !== false;
  };

  /**
   * Records events through the log. What changed data was audited in its own commit, so an event
   * that cannot be stored here belongs to an interaction that changed nothing: it is answered 503
   * (its answer would be unaudited), except the reads of a transaction already committed, whose
   * answer must reach the client so that it does not send the transaction again.
   */
  const record = async (
    request: FhirRequest,
    facts: AuditFacts[],
    options: { durable: boolean; answerAnyway?: boolean },
  ): Promise<void> => {
    const server = serverFor(request);
    const events: AuditEvent[] = facts.map((f) => auditEvent(f, server));
    try {
      await log.record(events, { durable: options.durable });
    } catch (error) {
      logger.error({ err: error, requestId: request.requestId }, 'audit events could not be recorded');
      if (options.answerAnyway) return;
      throw serviceUnavailable(
        'The audit record of this request could not be stored, so it is not answered; try again',
      );
    }
  };

  context.interceptors.push({
    name: 'audit',
    beforeAuthorization(_request, interaction) {
      if (interaction.resourceType === AUDIT_TYPE && IMMUTABLE_INTERACTIONS.has(interaction.kind)) {
        throw methodNotAllowed(
          `AuditEvents are the audit trail: they cannot be ${interaction.kind === 'delete' ? 'deleted' : `${interaction.kind}d`}`,
        );
      }
    },
    beforeInteraction(request, interaction) {
      request.written = [];
      inFlight.set(request.written, { request, interaction, companions: [] });
    },
    companionWrites(request, staged) {
      const state = request.written ? inFlight.get(request.written) : undefined;
      if (!state || !staged.length) return [];
      const success = { response: { status: 200, headers: {} } };
      let facts: AuditFacts[];
      let entries: number[] = [];
      if (state.interaction.kind === 'transaction') {
        // The Bundle and the entries staged in this attempt; reads run after the commit.
        const staging = currentAttempt(drafts.get(state.request) ?? []);
        entries = staging.map((d) => d.index);
        facts = [factsOf(state.request, state.interaction, success), ...staging.map((d) => d.facts)];
      } else {
        const written = staged.map((w) => ({ type: w.type, doc: w.next }));
        facts = [factsOf(state.request, state.interaction, success, written)];
      }
      state.companions.push({ anchor: staged[0].next, entries });
      const server = serverFor(state.request);
      return facts.map((f) => ({
        type: AUDIT_TYPE,
        id: newId(),
        method: 'POST' as const,
        previous: null,
        resource: auditEvent(f, server),
      }));
    },
    async afterInteraction(request, interaction, result) {
      if (audited.has(request) || interaction.kind === 'capabilities') return;
      audited.add(request);
      const state = request.written ? inFlight.get(request.written) : undefined;
      const written = request.written ?? [];
      // A companion was committed when the version it was staged with is among those written.
      const committed = (state?.companions ?? []).filter((c) => written.some((w) => w.doc === c.anchor));
      if (interaction.kind !== 'transaction') {
        if (result.response && committed.length) {
          // Its event was committed with its writes (a batch entry's too: its Bundle leaves it out).
          if (request.bundle) storedOf(request.bundle.request).add(request.bundle.index);
          return;
        }
        const facts = factsOf(request, interaction, result);
        const bundle = request.bundle;
        if (bundle) {
          // Recorded with its Bundle, once the Bundle's outcome (a transaction's commit) is known.
          const list = drafts.get(bundle.request) ?? [];
          list.push({ index: bundle.index, facts, work: request.unitOfWork });
          drafts.set(bundle.request, list);
          return;
        }
        await record(request, [facts], { durable: durableFor(interaction) });
        return;
      }
      const stored = storedOf(request);
      for (const c of committed) for (const index of c.entries) stored.add(index);
      storedEntries.delete(request);
      const all = committed.length && !result.error ? [] : [factsOf(request, interaction, result)];
      all.push(
        ...entryFacts(request, result, all[0] ?? factsOf(request, interaction, result), drafts.get(request) ?? [], {
          stored,
          committed: committed.length > 0,
        }),
      );
      drafts.delete(request);
      // What the commit did not carry: reads run after it, entries matched while preparing.
      const done = committed.length > 0 && !result.error;
      await record(request, all, { durable: !done, answerAnyway: done });
    },
    async afterAuthenticationFailure(request, error) {
      const facts = factsOf(request, unauthenticatedInteraction(request), { error });
      // Who is unknown; where from, and what was asked for (the raw request), is what the audit has.
      facts.query = rawRequest(request);
      try {
        await log.record([auditEvent(facts, serverFor(request))], { durable: false });
      } catch (failure) {
        // A 401 reveals nothing and changes nothing: it is answered even when its audit cannot be stored.
        logger.error({ err: failure, requestId: request.requestId }, 'audit of a refused request could not be stored');
      }
    },
  });
  context.capabilities.push({
    refusesInteraction: (type, interaction) => type === AUDIT_TYPE && IMMUTABLE_INTERACTIONS.has(interaction),
  });
  return log;
}

/** What an unauthenticated request asked for, as the route table reads it (nothing when no route matches). */
function unauthenticatedInteraction(request: FhirRequest): Interaction {
  try {
    const { route, params } = matchRoute(request.method, request.path);
    return { kind: route.interaction, resourceType: params.type, id: params.id, operation: params.op };
  } catch {
    return { kind: METHOD_INTERACTIONS[request.method] ?? 'read' };
  }
}
