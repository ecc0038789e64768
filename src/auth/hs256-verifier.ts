import { errors, jwtVerify } from 'jose';
import { InvalidTokenError, type TokenVerifier } from './token-verifier';

/** How far a token's exp/nbf may be off for clocks that disagree a little. */
export const CLOCK_TOLERANCE_SECONDS = 5;

/** Why a token was refused, in words that never repeat the token. */
export function refusalReason(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    return error.claim === 'nbf' ? 'the token is not valid yet' : `the token's ${error.claim} claim is not accepted`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's signing algorithm is not accepted";
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return 'the token is malformed';
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key of the issuer matches the token';
  return 'the token could not be verified';
}

/** Tokens signed with a shared secret (AUTH_HS256_SECRET, or development mode's secret in DATA_DIR). */
export function hs256Verifier(secret: string, options: { issuer?: string; audience?: string } = {}): TokenVerifier {
  const key = new TextEncoder().encode(secret);
  return {
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: ['HS256'],
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
        });
        return payload;
      } catch (error) {
        throw new InvalidTokenError(refusalReason(error));
      }
    },
  };
}

/**
 * Several accepted issuers (an identity provider's tokens and the server's own token endpoint's): the
 * first that accepts a token wins; when none does, the first refusal is the answer.
 */
export function anyOfVerifiers(verifiers: TokenVerifier[]): TokenVerifier {
  return {
    async verify(token) {
      let first: unknown;
      for (const verifier of verifiers) {
        try {
          return await verifier.verify(token);
        } catch (error) {
          first ??= error;
        }
      }
      throw first instanceof InvalidTokenError ? first : new InvalidTokenError('the token could not be verified');
    },
  };
}
