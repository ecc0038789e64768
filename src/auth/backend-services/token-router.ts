import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { DEFAULT_CLOCK_TOLERANCE_SECONDS } from '../jwks-verifier';
import { mintAccessToken } from './access-token';
import { authenticateClient } from './client-assertion';
import { ASSERTION_ALGORITHMS, type ClientRegistry } from './client-registry';
import { OAuthError } from './oauth-error';
import type { ReplayStore } from './replay-store';
import { publicJwks, type SigningKey } from './signing-key';
import { grantScopes, splitScopes } from './smart-scopes';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const FORM_PARAMETERS = ['grant_type', 'scope', 'client_assertion_type', 'client_assertion', 'client_id'];
/** An assertion is at most MAX_TOKEN_LENGTH; the rest of a form is small. */
const MAX_FORM_BYTES = 64 * 1024;

export interface BackendServicesOptions {
  registry: ClientRegistry;
  /** The `iss` of the access tokens minted here (e.g. the PUBLIC_BASE_URL origin + '/auth'). */
  issuer: string;
  /** This endpoint's public URL: the `aud` client assertions must carry. */
  tokenEndpointUrl: string;
  /** The FHIR base URL: the `aud` of the access tokens minted here. */
  audience: string;
  signer: SigningKey;
  replayStore: ReplayStore;
  /** Default 300: the SMART page says expires_in SHOULD NOT exceed it. */
  accessTokenTtlSeconds?: number;
  clockToleranceSeconds?: number;
}

/** What `.well-known/smart-configuration` says about this endpoint. */
export function backendServicesDiscovery(tokenEndpointUrl: string) {
  return {
    token_endpoint: tokenEndpointUrl,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    capabilities: ['client-confidential-asymmetric'],
  };
}

/** pino-http's request logger, when the app has one. */
function requestLog(req: Request): Logger | undefined {
  return (req as { log?: Logger }).log;
}

const UNREADABLE_BODY: Record<number, string> = {
  413: 'the request body is too large',
  415: 'the body must be uncompressed form data in utf-8',
};

function noStore(res: Response): void {
  // RFC 6749 §5.1: token responses are never cached.
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
}

function sendError(res: Response, error: OAuthError): void {
  noStore(res);
  res.status(error.status).json({ error: error.code, error_description: error.description });
}

/** The form's parameters; RFC 6749 §3.2 forbids sending one twice. */
function readForm(req: Request): Map<string, string> {
  if (typeof req.body !== 'string') {
    throw new OAuthError('invalid_request', 'the body must be application/x-www-form-urlencoded');
  }
  const params = new URLSearchParams(req.body);
  const form = new Map<string, string>();
  for (const name of FORM_PARAMETERS) {
    const values = params.getAll(name);
    if (values.length > 1) throw new OAuthError('invalid_request', `${name} is given more than once`);
    if (values.length === 1) form.set(name, values[0]);
  }
  return form;
}

/**
 * POST /token (SMART Backend Services: client_credentials with a private_key_jwt assertion) and
 * GET /jwks.json (the public key of the access tokens minted here). Mount it at /auth.
 */
export function backendServicesRouter(options: BackendServicesOptions): express.Router {
  const ttlSeconds = options.accessTokenTtlSeconds ?? 300;
  const clockToleranceSeconds = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const router = express.Router();

  async function token(req: Request, res: Response): Promise<void> {
    const form = readForm(req);
    const grantType = form.get('grant_type');
    if (!grantType) throw new OAuthError('invalid_request', 'grant_type is required');
    if (grantType !== 'client_credentials') {
      throw new OAuthError('unsupported_grant_type', 'only the client_credentials grant is supported');
    }
    // Checked before the client is authenticated, so that a malformed request does not use up its assertion.
    const requested = splitScopes(form.get('scope') ?? '');
    if (!requested.length) throw new OAuthError('invalid_scope', 'scope is required');
    if (form.get('client_assertion_type') !== JWT_BEARER_ASSERTION) {
      throw new OAuthError('invalid_client', `client_assertion_type must be ${JWT_BEARER_ASSERTION}`);
    }
    const assertion = form.get('client_assertion');
    if (!assertion) throw new OAuthError('invalid_client', 'client_assertion is required');

    const now = Math.floor(Date.now() / 1000);
    const { client, jti, exp } = await authenticateClient(assertion, {
      registry: options.registry,
      tokenEndpointUrl: options.tokenEndpointUrl,
      clockToleranceSeconds,
      now,
    });
    const clientId = form.get('client_id');
    if (clientId !== undefined && clientId !== client.clientId) {
      throw new OAuthError('invalid_client', 'client_id does not match the client_assertion');
    }
    // Kept as long as the assertion itself could still be accepted; a later replay fails on exp.
    const usableUntil = new Date((exp + clockToleranceSeconds) * 1000);
    if (!(await options.replayStore.claim(client.clientId, jti, usableUntil))) {
      throw new OAuthError('invalid_client', 'client_assertion jti has been used before');
    }
    const scopes = grantScopes(requested, client.scopes);
    if (!scopes.length)
      throw new OAuthError('invalid_scope', 'none of the requested scopes is allowed for this client');

    const accessToken = await mintAccessToken({
      key: options.signer,
      issuer: options.issuer,
      audience: options.audience,
      client,
      scopes,
      ttlSeconds,
      now,
    });
    requestLog(req)?.info({ client_id: client.clientId, scope: scopes.join(' ') }, 'access token issued');
    noStore(res);
    res
      .status(200)
      .json({ access_token: accessToken, token_type: 'bearer', expires_in: ttlSeconds, scope: scopes.join(' ') });
  }

  router.post(
    '/token',
    express.text({ type: 'application/x-www-form-urlencoded', limit: MAX_FORM_BYTES, inflate: false }),
    async (req: Request, res: Response) => {
      try {
        await token(req, res);
      } catch (error) {
        if (!(error instanceof OAuthError)) throw error;
        requestLog(req)?.info({ error: error.code, reason: error.description }, 'token request refused');
        sendError(res, error);
      }
    },
  );
  router.all('/token', (_req: Request, res: Response) => {
    res.setHeader('Allow', 'POST');
    sendError(res, new OAuthError('invalid_request', 'the token endpoint takes POST', 405));
  });
  router.get('/jwks.json', (_req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(publicJwks(options.signer));
  });

  // A body the form parser refused (too large, compressed, unknown charset) still answers in OAuth's terms.
  router.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const description = UNREADABLE_BODY[status] ?? 'the request body cannot be read';
      sendError(res, new OAuthError('invalid_request', description, status));
      return;
    }
    requestLog(req)?.error({ err: error }, 'token endpoint failed');
    if (res.headersSent) {
      next(error);
      return;
    }
    noStore(res);
    res.status(500).json({ error: 'server_error', error_description: 'the token endpoint failed; try again' });
  });
  return router;
}
