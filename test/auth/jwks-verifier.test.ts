import {
  CompactSign,
  exportJWK,
  generateKeyPair,
  SignJWT,
  UnsecuredJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { jwksVerifier, type JwksVerifierOptions } from '../../src/auth/jwks-verifier';
import { InvalidTokenError, type TokenVerifier } from '../../src/auth/token-verifier';
import { startJwksServer, unreachableUrl, type JwksServer } from './jwks-server';

const ISSUER = 'https://idp.example.test/realms/clinic';
const AUDIENCE = 'https://meds-fhir.test/fhir';

interface TestKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function testKey(alg: 'RS256' | 'ES256', kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' } };
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}

/** A token as the identity provider would issue it, with `claims` overriding the defaults. */
function sign(key: TestKey, claims: JWTPayload = {}, header: { kid?: string } = {}): Promise<string> {
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', exp: now() + 300, iat: now(), ...claims })
    .setProtectedHeader({ alg: key.alg, kid: header.kid ?? key.kid, typ: 'JWT' })
    .sign(key.privateKey);
}

async function expectRefused(verifier: TokenVerifier, token: string, reason: string): Promise<void> {
  const error = await verifier.verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidTokenError);
  expect((error as Error).message).toBe(reason);
  if (token) expect((error as Error).message).not.toContain(token);
  // jose's claim errors carry the decoded claims; they must not travel with the error into a log.
  expect(JSON.stringify((error as Error).cause ?? null)).not.toContain('user-1');
}

describe('jwksVerifier', () => {
  let rsa: TestKey;
  let ec: TestKey;
  let server: JwksServer;
  let verifier: TokenVerifier;

  function verifierFor(options: Partial<JwksVerifierOptions> = {}): TokenVerifier {
    return jwksVerifier({ jwksUri: server.url, issuer: ISSUER, audience: AUDIENCE, ...options });
  }

  beforeAll(async () => {
    rsa = await testKey('RS256', 'rsa-1');
    ec = await testKey('ES256', 'ec-1');
    server = await startJwksServer({ keys: [rsa.publicJwk, ec.publicJwk] });
  });
  afterAll(() => server.close());
  beforeEach(() => {
    server.serve({ keys: [rsa.publicJwk, ec.publicJwk] });
    verifier = verifierFor();
  });

  it('accepts RS256 and ES256 tokens of the configured issuer and audience and returns their claims', async () => {
    const fromRsa = await verifier.verify(await sign(rsa, { scope: 'user/*.rs' }));
    expect(fromRsa).toMatchObject({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', scope: 'user/*.rs' });
    const fromEc = await verifier.verify(await sign(ec, { aud: ['other', AUDIENCE] }));
    expect(fromEc.sub).toBe('user-1');
  });

  it('caches the key set: many tokens, one fetch', async () => {
    const before = server.fetches();
    for (let i = 0; i < 5; i++) await verifier.verify(await sign(i % 2 ? rsa : ec));
    expect(server.fetches() - before).toBe(1);
  });

  it('fetches the key set again when a token names an unknown kid (key rotation)', async () => {
    const rotating = verifierFor({ refetchCooldownSeconds: 0 });
    await rotating.verify(await sign(rsa));
    const fetchesBefore = server.fetches();
    const successor = await testKey('RS256', 'rsa-2');
    server.serve({ keys: [successor.publicJwk] });
    await expect(rotating.verify(await sign(successor))).resolves.toMatchObject({ sub: 'user-1' });
    expect(server.fetches()).toBe(fetchesBefore + 1);
    // The retired key is gone after the refetch.
    await expectRefused(rotating, await sign(rsa), 'unknown signing key');
  });

  it('does not fetch again for an unknown kid within the cooldown after a fetch', async () => {
    await verifier.verify(await sign(rsa));
    const fetchesBefore = server.fetches();
    await expectRefused(verifier, await sign(rsa, {}, { kid: 'invented' }), 'unknown signing key');
    await expectRefused(verifier, await sign(rsa, {}, { kid: 'invented-too' }), 'unknown signing key');
    expect(server.fetches()).toBe(fetchesBefore);
  });

  it('refuses an expired token, and accepts one expired within the clock tolerance', async () => {
    await expectRefused(verifier, await sign(rsa, { exp: now() - 120, iat: now() - 600 }), 'token expired');
    await expect(verifier.verify(await sign(rsa, { exp: now() - 5 }))).resolves.toBeDefined();
    const strict = verifierFor({ clockToleranceSeconds: 0 });
    await expectRefused(strict, await sign(rsa, { exp: now() - 5 }), 'token expired');
  });

  it('refuses a token whose nbf is in the future', async () => {
    await expectRefused(verifier, await sign(ec, { nbf: now() + 120 }), 'token not yet valid');
  });

  it('refuses a token without exp', async () => {
    const token = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1' })
      .setProtectedHeader({ alg: 'RS256', kid: rsa.kid })
      .sign(rsa.privateKey);
    await expectRefused(verifier, token, 'token has no exp claim');
  });

  it('refuses a wrong issuer and a wrong audience', async () => {
    await expectRefused(verifier, await sign(rsa, { iss: 'https://evil.example.test' }), 'wrong issuer');
    await expectRefused(verifier, await sign(rsa, { aud: 'https://other.example.test/fhir' }), 'wrong audience');
    // Without AUTH_AUDIENCE the audience is not checked.
    const anyAudience = jwksVerifier({ jwksUri: server.url, issuer: ISSUER });
    await expect(
      anyAudience.verify(await sign(rsa, { aud: 'https://other.example.test/fhir' })),
    ).resolves.toBeDefined();
  });

  it('refuses alg none', async () => {
    const token = new UnsecuredJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', exp: now() + 300 }).encode();
    await expectRefused(verifier, token, 'signing algorithm not accepted');
  });

  it('refuses an HS256 token, even one keyed with the public key material', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(rsa.publicJwk));
    const token = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', exp: now() + 300 })
      .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
      .sign(secret);
    await expectRefused(verifier, token, 'signing algorithm not accepted');
  });

  it('refuses a token signed by another key under a known kid, and one whose payload was changed', async () => {
    const impostor = await testKey('RS256', rsa.kid);
    await expectRefused(verifier, await sign(impostor), 'signature invalid');
    const [header, , signature] = (await sign(rsa)).split('.');
    const forged = Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'admin', exp: now() + 300 }));
    await expectRefused(verifier, `${header}.${forged.toString('base64url')}.${signature}`, 'signature invalid');
  });

  it('refuses a malformed token', async () => {
    for (const token of ['', 'abc', 'a.b.c', 'a.b', `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.e30`]) {
      await expectRefused(verifier, token, 'malformed token');
    }
    await expectRefused(verifier, `${'a'.repeat(20_000)}.b.c`, 'malformed token');
    // Correctly signed, but what is signed is not a claims set.
    const notJson = await new CompactSign(new TextEncoder().encode('not json'))
      .setProtectedHeader({ alg: 'RS256', kid: rsa.kid })
      .sign(rsa.privateKey);
    await expectRefused(verifier, notJson, 'malformed token');
  });

  it('refuses every token while the key set cannot be fetched', async () => {
    const token = await sign(rsa);
    const down = jwksVerifier({ jwksUri: await unreachableUrl(), issuer: ISSUER });
    await expectRefused(down, token, 'signing keys unavailable');

    server.serve({ status: 500, body: 'internal error' });
    await expectRefused(verifierFor(), token, 'signing keys unavailable');
    server.serve({ status: 200, body: 'not a key set' });
    await expectRefused(verifierFor(), token, 'signing keys unavailable');
    server.serve({ keys: [{ kty: 'RSA', kid: 'broken', n: 'AQAB' }] as JWK[] });
    await expectRefused(verifierFor(), await sign(rsa, {}, { kid: 'broken' }), 'signing keys unavailable');
    server.serve('hang');
    await expectRefused(verifierFor({ fetchTimeoutMs: 200 }), token, 'signing keys unavailable');
  });

  it('keeps the failed fetch as the cause of a keys-unavailable refusal, for the log', async () => {
    const down = jwksVerifier({ jwksUri: await unreachableUrl(), issuer: ISSUER });
    const error = await down.verify(await sign(rsa)).catch((e: unknown) => e);
    expect((error as Error).cause).toBeDefined();
  });
});
