import { FhirError, issue, outcome } from '../fhir/outcome';
import { requesterFromClaims, UNRESTRICTED, type Requester } from './requester';
import { InvalidTokenError, type TokenVerifier } from './token-verifier';

/** The realm named in every challenge. */
const REALM = 'meds-fhir';

/** A 401: no token (the challenge names no error) or a token that failed verification. */
export class AuthenticationError extends FhirError {
  constructor(
    readonly challenge: string,
    text: string,
  ) {
    super(401, outcome([issue('error', 'login', text)]));
  }
}

const BEARER = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i;

/** Turns an Authorization header into the requester, or throws an AuthenticationError. */
export class Authenticator {
  constructor(
    private readonly verifier: TokenVerifier | 'off',
    /** Adds what the server knows of a requester beyond its token (a registered client's write labels). */
    private readonly enrich: (requester: Requester) => Requester = (r) => r,
  ) {}

  get enabled(): boolean {
    return this.verifier !== 'off';
  }

  async authenticate(authorization: string | undefined): Promise<Requester> {
    if (this.verifier === 'off') return UNRESTRICTED;
    if (authorization === undefined || authorization.trim() === '') {
      throw new AuthenticationError(
        `Bearer realm="${REALM}"`,
        'This request needs a bearer token (Authorization: Bearer)',
      );
    }
    const token = BEARER.exec(authorization.trim())?.[1];
    if (!token) {
      throw invalidToken('The Authorization header is not "Bearer" followed by a token');
    }
    try {
      return this.enrich(requesterFromClaims(await this.verifier.verify(token)));
    } catch (error) {
      if (error instanceof InvalidTokenError) throw invalidToken(`The bearer token was refused: ${error.message}`);
      throw error;
    }
  }
}

function invalidToken(text: string): AuthenticationError {
  // The description is ours, never the token's content, and has no quote to escape.
  const description = text.replace(/["\\]/g, '');
  return new AuthenticationError(
    `Bearer realm="${REALM}", error="invalid_token", error_description="${description}"`,
    text,
  );
}
