/** The error codes of RFC 6749 §5.2 the token endpoint answers with. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope';

/**
 * A refused token request. `description` goes to the client as error_description, so it names the
 * rule that failed and never repeats the assertion or values taken from it.
 */
export class OAuthError extends Error {
  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    /** RFC 6749 §5.2: 400, except 401 for a client that failed authentication. */
    readonly status: number = code === 'invalid_client' ? 401 : 400,
  ) {
    super(description);
  }
}
