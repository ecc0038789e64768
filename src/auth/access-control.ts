import type { ServerConfig } from '../config';
import type { FhirRequest } from '../fhir/request';
import type { ServerContext } from '../rest/context';
import { AccessPolicy, type AccessLookups } from './access-policy';
import { Authenticator } from './authenticate';
import { loadOrCreateDevSecret } from './dev-secret';
import { anyOfVerifiers, hs256Verifier } from './hs256-verifier';
import type { Requester } from './requester';
import type { TokenVerifier } from './token-verifier';

/** The access decision's parts the pipeline uses: who is asking, and what they may see. */
export interface AccessControl {
  authenticator: Authenticator;
  /** The decision for one request (its Bundle entries share it). */
  policyFor(requester: Requester): Promise<AccessPolicy>;
}

/** Verifiers of the configured mode (AUTH_JWKS_URI's and the token endpoint's are added by their modules). */
export function configuredVerifiers(config: ServerConfig): TokenVerifier[] {
  const { auth } = config;
  const options = { issuer: auth.issuer, audience: auth.audience };
  switch (auth.mode) {
    case 'off':
      return [];
    case 'hs256':
      return [hs256Verifier(auth.hs256Secret as string, options)];
    case 'development':
      return [hs256Verifier(loadOrCreateDevSecret(config.dataDir), options)];
    case 'jwks':
      return [];
  }
}

/**
 * The look-ups a decision makes, straight from the database through the search module (registered
 * after the context is made, hence the getter).
 */
function lookupsOf(contextOf: () => ServerContext): AccessLookups {
  return {
    async find(type, query, limit) {
      const context = contextOf();
      if (!context.findMatches) throw new Error('access decisions need the search module');
      return context.findMatches(type, query, limit, baseUrlOf(context), context.store.directReader());
    },
    read: (type, id) => contextOf().store.read(type, id),
    async compile(type, query) {
      const context = contextOf();
      if (!context.compileQuery) throw new Error('access decisions need the search module');
      return context.compileQuery(type, query, baseUrlOf(context));
    },
  };
}

/** References in scope queries are matched as relative ones, so any base serves. */
function baseUrlOf(context: ServerContext): string {
  return context.config.publicBaseUrl ?? 'http://localhost/fhir';
}

export function createAccessControl(
  config: ServerConfig,
  contextOf: () => ServerContext,
  verifiers: TokenVerifier[],
): AccessControl {
  const off = config.auth.mode === 'off';
  const authenticator = new Authenticator(off ? 'off' : anyOfVerifiers(verifiers));
  const lookups = lookupsOf(contextOf);
  return {
    authenticator,
    policyFor: (requester) => AccessPolicy.build(requester, lookups),
  };
}

/**
 * The decision a request is made under, shared with its Bundle entries. Every request names its
 * requester: the HTTP edge from the token, internal callers (examples) UNRESTRICTED explicitly.
 */
export async function policyOf(request: FhirRequest, context: ServerContext): Promise<AccessPolicy> {
  if (!request.requester) throw new Error('a FHIR request without a requester reached the pipeline');
  request.access ??= await context.access.policyFor(request.requester);
  return request.access;
}
