import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { InvalidTokenError, type TokenVerifier } from './token-verifier';

/** How far a token's exp, nbf and iat may disagree with this server's clock. */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

/** A bearer token longer than this is refused before any parsing; real access tokens are a few KB. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

export interface JwksVerifierOptions {
  /** The identity provider's JWK Set URL (AUTH_JWKS_URI). */
  jwksUri: string;
  /** The exact `iss` its tokens carry (AUTH_ISSUER). */
  issuer: string;
  /** The `aud` a token must name (AUTH_AUDIENCE); unset: aud is not checked. */
  audience?: string;
  clockToleranceSeconds?: number;
  /**
   * After a fetch, a token naming an unknown `kid` causes another fetch only once this much time has
   * passed, so that tokens with invented key ids cannot make the server hammer the identity provider.
   */
  refetchCooldownSeconds?: number;
  /** Keys are fetched again after this long even when every kid is known, so revoked keys drop out. */
  cacheMaxAgeSeconds?: number;
  fetchTimeoutMs?: number;
}

/** The algorithms external identity providers sign access tokens with; HS* and none are never accepted. */
const IDP_ALGORITHMS = ['RS256', 'ES256'];

/** Raised by a key resolver that could not obtain the key set at all (as opposed to finding no matching key). */
export class SigningKeysUnavailable extends Error {}

/**
 * Wraps a remote key set so that a failed fetch (refused connection, timeout, non-200, not a JWK Set)
 * is told apart from a token that names a key the set does not have.
 */
export function distinguishUnavailableKeys(keys: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await keys(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      throw new SigningKeysUnavailable('signing keys unavailable', { cause: error });
    }
  };
}

/**
 * A short, fixed description of why a JWT was refused. Never contains the token or any value taken
 * from it, so it can go into a response and a log line.
 */
export function jwtFailureReason(error: unknown): string {
  if (error instanceof SigningKeysUnavailable) return 'signing keys unavailable';
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return `token has no ${error.claim} claim`;
    switch (error.claim) {
      case 'nbf':
        return 'token not yet valid';
      case 'iss':
        return 'wrong issuer';
      case 'aud':
        return 'wrong audience';
      case 'sub':
        return 'wrong subject';
      case 'typ':
        return 'wrong token type';
      default:
        return `invalid ${error.claim} claim`;
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return 'signing algorithm not accepted';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (error instanceof errors.JWKSNoMatchingKey) return 'unknown signing key';
  if (error instanceof errors.JWKSMultipleMatchingKeys) return 'ambiguous signing key';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'malformed token';
  if (error instanceof errors.JOSENotSupported) return 'unsupported token';
  return 'token could not be verified';
}

/**
 * The InvalidTokenError for a refused JWT. jose's claim errors carry the decoded claims, so they are
 * not kept as the cause (a logged error must not repeat token contents); a failed key fetch is.
 */
export function invalidToken(error: unknown): InvalidTokenError {
  const reason = jwtFailureReason(error);
  return error instanceof SigningKeysUnavailable
    ? new InvalidTokenError(reason, { cause: error.cause })
    : new InvalidTokenError(reason);
}

/** Verifies access tokens of an external identity provider against its published JWK Set. */
export function jwksVerifier(options: JwksVerifierOptions): TokenVerifier {
  const url = new URL(options.jwksUri);
  const keys = distinguishUnavailableKeys(
    createRemoteJWKSet(url, {
      timeoutDuration: options.fetchTimeoutMs ?? 5000,
      cooldownDuration: (options.refetchCooldownSeconds ?? 30) * 1000,
      cacheMaxAge: (options.cacheMaxAgeSeconds ?? 600) * 1000,
    }),
  );
  const clockTolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  return {
    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('malformed token');
      try {
        const { payload } = await jwtVerify(token, keys, {
          algorithms: IDP_ALGORITHMS,
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance,
          // A token without exp would never expire.
          requiredClaims: ['exp'],
        });
        return payload;
      } catch (error) {
        throw invalidToken(error);
      }
    },
  };
}
