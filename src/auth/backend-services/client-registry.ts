import type { Coding } from '@medplum/fhirtypes';
import { createLocalJWKSet, createRemoteJWKSet, importJWK, type JWK, type JWTVerifyGetKey } from 'jose';
import { readFile } from 'node:fs/promises';
import { distinguishUnavailableKeys } from '../jwks-verifier';
import { registryShapeProblems } from './registry-schema';
import { isKnownScope, splitScopes } from './smart-scopes';

/** A SMART Backend Services client registered in AUTH_CLIENTS_FILE. */
export interface RegisteredClient {
  clientId: string;
  /** The scopes it may be given; a token request is narrowed to these. */
  scopes: string[];
  /** Sensitivity codes its tokens are cleared for (`["*"]`: all); copied into its access tokens. */
  clearance?: string[];
  /** Security labels the server adds to everything this client writes. */
  labels: Coding[];
  organization?: string;
  purposeOfUse?: string;
  /** Set when its keys are fetched from a URL; an assertion's `jku` must then name exactly this URL. */
  jwksUri?: string;
  /** Finds the key an assertion's header names (by kid, of the type its alg needs). */
  keys: JWTVerifyGetKey;
}

export interface ClientRegistry {
  get(clientId: string): RegisteredClient | undefined;
  /** The labels to add to meta.security of what this client writes; none for an unknown client. */
  writeLabels(clientId: string): Coding[];
  readonly clients: readonly RegisteredClient[];
}

/** The registry file cannot be used; the message names the file and every problem found. */
export class ClientRegistryError extends Error {}

/** Only RS384 and ES384 assertions are accepted, so only RSA and P-384 keys can ever verify one. */
export const ASSERTION_ALGORITHMS = ['RS384', 'ES384'] as const;

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** How long a client's fetched key set is used before it is fetched again, even if every kid is known. */
const CLIENT_JWKS_MAX_AGE_MS = 5 * 60_000;
/** A token naming a kid the cached set lacks refetches the set at most this often. */
const CLIENT_JWKS_COOLDOWN_MS = 30_000;

interface ClientEntry {
  client_id: string;
  jwks?: { keys: JWK[] };
  jwks_uri?: string;
  scope: string;
  clearance?: string[];
  labels?: Coding[];
  organization?: string;
  purpose_of_use?: string;
}

function algorithmFor(jwk: JWK): string | undefined {
  if (jwk.kty === 'RSA') return 'RS384';
  if (jwk.kty === 'EC' && jwk.crv === 'P-384') return 'ES384';
  return undefined;
}

async function keyProblems(jwk: JWK, where: string): Promise<string[]> {
  const problems: string[] = [];
  const present = PRIVATE_JWK_MEMBERS.filter((member) => member in jwk);
  if (present.length) {
    return [`${where}: holds private key material (${present.join(', ')}); register the public key only`];
  }
  const alg = algorithmFor(jwk);
  if (!alg) {
    const kind = [jwk.kty, jwk.crv].filter(Boolean).join(' ');
    return [`${where}: an ${kind} key cannot verify RS384 or ES384 (use an RSA or an EC P-384 key)`];
  }
  if (jwk.alg !== undefined && jwk.alg !== alg) problems.push(`${where}: alg ${jwk.alg} is not ${alg}`);
  if (jwk.use !== undefined && jwk.use !== 'sig') problems.push(`${where}: use must be "sig"`);
  if (jwk.kty === 'RSA' && typeof jwk.n === 'string' && Buffer.from(jwk.n, 'base64url').length < 256) {
    problems.push(`${where}: RSA keys must have at least 2048 bits`);
  }
  try {
    await importJWK(jwk, alg);
  } catch {
    problems.push(`${where}: is not a valid ${jwk.kty} public key`);
  }
  return problems;
}

function jwksUriProblem(value: string, where: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${where}: is not a URL`;
  }
  // The SMART page requires TLS; plain http only for a key server on this machine (development, tests).
  if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) return undefined;
  return `${where}: must be an https URL`;
}

async function entryProblems(entry: ClientEntry, where: string): Promise<string[]> {
  const problems: string[] = [];
  if ((entry.jwks === undefined) === (entry.jwks_uri === undefined)) {
    problems.push(`${where}: give exactly one of jwks (inline public keys) and jwks_uri`);
  }
  if (entry.jwks_uri !== undefined) {
    const problem = jwksUriProblem(entry.jwks_uri, `${where}.jwks_uri`);
    if (problem) problems.push(problem);
  }
  const kids = new Set<string>();
  for (const [index, jwk] of (entry.jwks?.keys ?? []).entries()) {
    const keyWhere = `${where}.jwks.keys[${index}]`;
    if (kids.has(jwk.kid as string)) problems.push(`${keyWhere}: kid "${jwk.kid}" is used twice`);
    kids.add(jwk.kid as string);
    problems.push(...(await keyProblems(jwk, keyWhere)));
  }
  for (const scope of splitScopes(entry.scope)) {
    if (!isKnownScope(scope)) problems.push(`${where}.scope: "${scope}" is not a SMART scope`);
  }
  if (entry.clearance?.includes('*') && entry.clearance.length > 1) {
    problems.push(`${where}.clearance: "*" stands alone`);
  }
  return problems;
}

function keysOf(entry: ClientEntry): JWTVerifyGetKey {
  if (entry.jwks) return createLocalJWKSet({ keys: entry.jwks.keys });
  return distinguishUnavailableKeys(
    createRemoteJWKSet(new URL(entry.jwks_uri as string), {
      cooldownDuration: CLIENT_JWKS_COOLDOWN_MS,
      cacheMaxAge: CLIENT_JWKS_MAX_AGE_MS,
      timeoutDuration: 5000,
    }),
  );
}

function toClient(entry: ClientEntry): RegisteredClient {
  return {
    clientId: entry.client_id,
    scopes: splitScopes(entry.scope),
    clearance: entry.clearance,
    labels: (entry.labels ?? []).map((label) => ({ ...label })),
    organization: entry.organization,
    purposeOfUse: entry.purpose_of_use,
    jwksUri: entry.jwks_uri,
    keys: keysOf(entry),
  };
}

/**
 * Builds the registry from the parsed file (`{"clients": [...]}`), refusing it as a whole when any
 * entry is wrong: a registry that silently skipped a client would make it fail later, far from the
 * cause.
 */
export async function clientRegistryFromJson(value: unknown, source = 'client registry'): Promise<ClientRegistry> {
  const problems = registryShapeProblems(value);
  if (!problems.length) {
    const entries = (value as { clients: ClientEntry[] }).clients;
    const seen = new Set<string>();
    for (const [index, entry] of entries.entries()) {
      const where = `clients[${index}]`;
      if (seen.has(entry.client_id)) problems.push(`${where}.client_id: "${entry.client_id}" is registered twice`);
      seen.add(entry.client_id);
      problems.push(...(await entryProblems(entry, where)));
    }
  }
  if (problems.length) throw new ClientRegistryError(`${source}: ${problems.join('; ')}`);
  const clients = (value as { clients: ClientEntry[] }).clients.map(toClient);
  const byId = new Map(clients.map((client) => [client.clientId, client]));
  return {
    get: (clientId) => byId.get(clientId),
    writeLabels: (clientId) => (byId.get(clientId)?.labels ?? []).map((label) => ({ ...label })),
    clients,
  };
}

/** Reads AUTH_CLIENTS_FILE; any problem is an error at start-up that names the file and the problem. */
export async function loadClientRegistry(path: string): Promise<ClientRegistry> {
  const source = `client registry ${path}`;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ClientRegistryError(`${source}: cannot be read (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ClientRegistryError(`${source}: is not JSON (${(error as Error).message})`);
  }
  return clientRegistryFromJson(value, source);
}
