import { SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import type { RegisteredClient } from './client-registry';
import type { SigningKey } from './signing-key';

/** RFC 9068's media type for JWT access tokens, so that no other kind of JWT passes for one. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

export interface MintOptions {
  key: SigningKey;
  issuer: string;
  /** The FHIR base URL the token is for. */
  audience: string;
  client: RegisteredClient;
  scopes: string[];
  ttlSeconds: number;
  /** Seconds since the epoch. */
  now: number;
}

/**
 * A short-lived access token carrying the claims SECURITY.md says the server reads, taken from the
 * client's registration: what the client asserted about itself beyond its id is never copied.
 */
export async function mintAccessToken(options: MintOptions): Promise<string> {
  const { client } = options;
  const claims: Record<string, unknown> = { client_id: client.clientId, scope: options.scopes.join(' ') };
  if (client.clearance) claims.clearance = client.clearance;
  if (client.organization) claims.organization = client.organization;
  if (client.purposeOfUse) claims.purpose_of_use = client.purposeOfUse;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.key.alg, kid: options.key.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(options.issuer)
    .setSubject(client.clientId)
    .setAudience(options.audience)
    .setIssuedAt(options.now)
    .setExpirationTime(options.now + options.ttlSeconds)
    .setJti(randomUUID())
    .sign(options.key.privateKey);
}
