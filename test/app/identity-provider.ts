import express from 'express';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A minimal OAuth 2 authorization server on a local port, as an identity provider would be for the
 * clinician page: /authorize consents at once and redirects back with a code, /token exchanges it only
 * with the PKCE verifier of the S256 challenge, /jwks.json serves the key its RS256 tokens verify with.
 */
export interface IdentityProvider {
  issuer: string;
  authorizeUrl: string;
  tokenUrl: string;
  jwksUrl: string;
  /** A token for any claims (the tests' administrator). */
  sign(claims: JWTPayload): Promise<string>;
  /** What /authorize and /token were asked. */
  authorizations: Record<string, string>[];
  exchanges: { status: number; form: Record<string, string> }[];
  close(): Promise<void>;
}

export async function startIdentityProvider(user: {
  sub: string;
  fhirUser: string;
  scope: string;
}): Promise<IdentityProvider> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, Record<string, string>>();
  const authorizations: Record<string, string>[] = [];
  const exchanges: { status: number; form: Record<string, string> }[] = [];
  let issuer = '';
  const sign = (claims: JWTPayload, key: CryptoKey = privateKey) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
      .setIssuer(issuer)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(key);

  const app = express();
  app.get('/jwks.json', (_req, res) => void res.json({ keys: [jwk] }));
  app.get('/authorize', (req, res) => {
    const query = Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, String(v)]));
    authorizations.push(query);
    if (query.response_type !== 'code' || query.code_challenge_method !== 'S256' || !query.code_challenge) {
      return void res.status(400).send('PKCE S256 authorization code flow only');
    }
    const code = randomUUID();
    codes.set(code, query);
    const back = new URL(query.redirect_uri);
    back.searchParams.set('code', code);
    back.searchParams.set('state', query.state);
    res.redirect(302, back.toString());
  });
  app.post('/token', express.urlencoded({ extended: false }), async (req, res) => {
    // The page calls from its own origin: a real provider allows the registered origins.
    res.setHeader('Access-Control-Allow-Origin', String(req.headers.origin ?? '*'));
    const form = req.body as Record<string, string>;
    const asked = codes.get(form.code);
    codes.delete(form.code);
    const challenge = createHash('sha256')
      .update(form.code_verifier ?? '')
      .digest('base64url');
    const valid =
      form.grant_type === 'authorization_code' &&
      asked !== undefined &&
      asked.client_id === form.client_id &&
      asked.redirect_uri === form.redirect_uri &&
      asked.code_challenge === challenge;
    exchanges.push({ status: valid ? 200 : 400, form });
    if (!valid) return void res.status(400).json({ error: 'invalid_grant' });
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      access_token: await sign({
        sub: user.sub,
        fhirUser: user.fhirUser,
        scope: user.scope,
        client_id: form.client_id,
      }),
      token_type: 'Bearer',
      expires_in: 3600,
      scope: user.scope,
    });
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer = base;
  return {
    issuer,
    authorizeUrl: `${base}/authorize`,
    tokenUrl: `${base}/token`,
    jwksUrl: `${base}/jwks.json`,
    sign: (claims) => sign(claims),
    authorizations,
    exchanges,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
