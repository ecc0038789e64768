import { jwtVerify } from 'jose';
import { DEFAULT_CLOCK_TOLERANCE_SECONDS, invalidToken, MAX_TOKEN_LENGTH } from '../jwks-verifier';
import { InvalidTokenError, type TokenVerifier } from '../token-verifier';
import { ACCESS_TOKEN_TYPE } from './access-token';
import { ACCESS_TOKEN_ALGORITHM, type SigningKey } from './signing-key';

export interface OwnTokenVerifierOptions {
  key: SigningKey;
  /** The issuer the token endpoint signs with. */
  issuer: string;
  /** The FHIR base URL its tokens are minted for. */
  audience: string;
  clockToleranceSeconds?: number;
}

/** Verifies the access tokens this server's token endpoint minted: its own key, ES256 only. */
export function ownTokenVerifier(options: OwnTokenVerifierOptions): TokenVerifier {
  const clockTolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  return {
    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('malformed token');
      try {
        const { payload } = await jwtVerify(token, options.key.publicKey, {
          algorithms: [ACCESS_TOKEN_ALGORITHM],
          issuer: options.issuer,
          audience: options.audience,
          // A client assertion or id token signed elsewhere never passes for an access token.
          typ: ACCESS_TOKEN_TYPE,
          clockTolerance,
          requiredClaims: ['exp', 'sub', 'client_id'],
        });
        return payload;
      } catch (error) {
        throw invalidToken(error);
      }
    },
  };
}
