import type { JWTPayload } from 'jose';

/** A bearer token that fails verification: answered 401 with `WWW-Authenticate: Bearer error="invalid_token"`. */
export class InvalidTokenError extends Error {}

/** Checks a bearer token's signature and registered claims (exp, nbf, iss, aud) and returns its claims. */
export interface TokenVerifier {
  /** Throws InvalidTokenError for any token it does not accept. */
  verify(token: string): Promise<JWTPayload>;
}
