import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { jwtFailureReason, MAX_TOKEN_LENGTH } from '../jwks-verifier';
import { ASSERTION_ALGORITHMS, type ClientRegistry, type RegisteredClient } from './client-registry';
import { OAuthError } from './oauth-error';

/** The SMART client-confidential-asymmetric page: exp SHALL be no more than five minutes in the future. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
const MAX_JTI_LENGTH = 255;

export interface AuthenticatedClient {
  client: RegisteredClient;
  jti: string;
  /** The assertion's exp, in seconds since the epoch. */
  exp: number;
}

export interface AssertionCheck {
  registry: ClientRegistry;
  /** The token endpoint's URL: the only `aud` an assertion for it may carry. */
  tokenEndpointUrl: string;
  clockToleranceSeconds: number;
  /** Seconds since the epoch. */
  now: number;
}

function refuse(description: string): OAuthError {
  return new OAuthError('invalid_client', description);
}

function readUnverified(assertion: string): { header: ProtectedHeaderParameters; claims: JWTPayload } {
  try {
    return { header: decodeProtectedHeader(assertion), claims: decodeJwt(assertion) };
  } catch {
    throw refuse('client_assertion is not a signed JWT');
  }
}

/**
 * Authenticates a client by its private_key_jwt assertion (RFC 7523 §3 and SMART's
 * client-confidential-asymmetric "Signature Verification"). The unverified `iss` only picks the
 * registration whose keys must then verify the signature; nothing else is trusted before that.
 * The jti is returned for the caller to record: this function has no memory of earlier assertions.
 */
export async function authenticateClient(assertion: string, check: AssertionCheck): Promise<AuthenticatedClient> {
  if (assertion.length > MAX_TOKEN_LENGTH) throw refuse('client_assertion is too long');
  const { header, claims } = readUnverified(assertion);
  if (!ASSERTION_ALGORITHMS.includes(header.alg as (typeof ASSERTION_ALGORITHMS)[number])) {
    throw refuse(`client_assertion must be signed with ${ASSERTION_ALGORITHMS.join(' or ')}`);
  }
  if (typeof header.kid !== 'string' || !header.kid) throw refuse('client_assertion header has no kid');
  if (typeof claims.iss !== 'string') throw refuse('client_assertion has no iss');
  const client = check.registry.get(claims.iss);
  if (!client) throw refuse('client_assertion names a client that is not registered');
  // The SMART page: a jku that is not the registered JWK Set URL fails verification.
  if (header.jku !== undefined && header.jku !== client.jwksUri) {
    throw refuse('client_assertion jku is not the JWK Set URL registered for this client');
  }

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(assertion, client.keys, {
      algorithms: [...ASSERTION_ALGORITHMS],
      issuer: client.clientId,
      subject: client.clientId,
      audience: check.tokenEndpointUrl,
      typ: 'JWT',
      clockTolerance: check.clockToleranceSeconds,
      currentDate: new Date(check.now * 1000),
      requiredClaims: ['exp', 'jti', 'sub'],
    }));
  } catch (error) {
    throw refuse(`client_assertion refused: ${jwtFailureReason(error)}`);
  }
  const exp = payload.exp as number;
  if (exp > check.now + MAX_ASSERTION_LIFETIME_SECONDS + check.clockToleranceSeconds) {
    throw refuse('client_assertion exp is more than five minutes ahead');
  }
  const jti = payload.jti;
  if (typeof jti !== 'string' || !jti || jti.length > MAX_JTI_LENGTH) {
    throw refuse(`client_assertion jti must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
  }
  return { client, jti, exp };
}
