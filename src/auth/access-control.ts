import type { Router } from 'express';
import type { Db } from 'mongodb';
import type { ServerConfig } from '../config';
import {
  backendServicesRouter,
  createReplayStore,
  loadClientRegistry,
  loadOrCreateSigningKey,
  ownTokenVerifier,
} from './backend-services';
import { jwksVerifier } from './jwks-verifier';
import { LookupCache } from './lookup-cache';
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
  /** SMART Backend Services' POST /auth/token, when clients are registered (AUTH_CLIENTS_FILE). */
  tokenEndpoint?: Router;
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
      return [
        jwksVerifier({ jwksUri: auth.jwksUri as string, issuer: auth.issuer as string, audience: auth.audience }),
      ];
  }
}

/**
 * The look-ups a decision makes, straight from the database through the search module (registered
 * after the context is made, hence the getter).
 */
function lookupsOf(contextOf: () => ServerContext): AccessLookups {
  let cache: LookupCache | undefined;
  return {
    async find(type, query, limit) {
      const context = contextOf();
      const { findMatches } = context;
      if (!findMatches) throw new Error('access decisions need the search module');
      cache ??= new LookupCache(context.store.journal, context.config.clockSkewMs);
      return cache.find(type, query, () =>
        findMatches(type, query, limit, baseUrlOf(context), context.store.directReader()),
      );
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

/**
 * The server's own token endpoint (SMART Backend Services) and the verifier of what it issues: tokens
 * signed with a key kept in the database, so every server process accepts every other's.
 */
async function backendServices(config: ServerConfig, db: Db) {
  const file = config.auth.clientsFile;
  if (!file) return undefined;
  // checkDeployment and loadConfig's callers make sure of it; the endpoint's aud cannot come from Host.
  if (!config.publicBaseUrl) throw new Error('AUTH_CLIENTS_FILE needs PUBLIC_BASE_URL (the token endpoint checks aud)');
  const registry = await loadClientRegistry(file);
  const key = await loadOrCreateSigningKey(db);
  const issuer = `${new URL(config.publicBaseUrl).origin}/auth`;
  const router = backendServicesRouter({
    registry,
    issuer,
    tokenEndpointUrl: `${issuer}/token`,
    audience: config.publicBaseUrl,
    signer: key,
    replayStore: await createReplayStore(db),
    accessTokenTtlSeconds: config.auth.accessTokenSeconds,
  });
  return { registry, router, verifier: ownTokenVerifier({ key, issuer, audience: config.publicBaseUrl }) };
}

export async function createAccessControl(
  config: ServerConfig,
  contextOf: () => ServerContext,
  db: Db,
): Promise<AccessControl> {
  const verifiers = configuredVerifiers(config);
  const own = await backendServices(config, db);
  // The server's own tokens first: they are told apart without a key fetch from an identity provider.
  if (own) verifiers.unshift(own.verifier);
  const off = config.auth.mode === 'off';
  const authenticator = new Authenticator(off ? 'off' : anyOfVerifiers(verifiers), (requester) => {
    const labels = own && requester.clientId ? own.registry.writeLabels(requester.clientId) : [];
    if (!labels.length) return requester;
    // A client that labels everything it writes (a Part 2 program's EHR) reads back what it wrote.
    const clearance = new Set([...requester.clearance, ...labels.flatMap((l) => (l.code ? [l.code] : []))]);
    return { ...requester, writeLabels: labels, clearance };
  });
  const lookups = lookupsOf(contextOf);
  return {
    authenticator,
    policyFor: (requester) => AccessPolicy.build(requester, lookups),
    ...(own ? { tokenEndpoint: own.router } : {}),
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
