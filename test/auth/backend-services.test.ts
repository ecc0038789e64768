import express from 'express';
import {
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { Db, MongoClient } from 'mongodb';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import {
  backendServicesDiscovery,
  backendServicesRouter,
  clientRegistryFromJson,
  ClientRegistryError,
  createReplayStore,
  grantScopes,
  JTI_COLLECTION,
  JWT_BEARER_ASSERTION,
  loadClientRegistry,
  loadOrCreateSigningKey,
  ownTokenVerifier,
  type ClientRegistry,
  type SigningKey,
} from '../../src/auth/backend-services';
import { InvalidTokenError, type TokenVerifier } from '../../src/auth/token-verifier';
import { databaseNameFor } from '../support/server';
import { startJwksServer, unreachableUrl, type JwksServer } from './jwks-server';

const BASE = 'https://meds-fhir.test';
const ISSUER = `${BASE}/auth`;
const TOKEN_URL = `${BASE}/auth/token`;
const FHIR_BASE = `${BASE}/fhir`;
const PART2_LABEL = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: '42CFRPart2' };

interface ClientKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  privateJwk: JWK;
}

async function clientKey(alg: 'ES384' | 'RS384', kid: string): Promise<ClientKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    kid,
    alg,
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid },
    privateJwk: await exportJWK(privateKey),
  };
}

/** The same key pair, usable for signing with another algorithm of its type (WebCrypto binds a key to one). */
async function sameKeyFor(key: ClientKey, alg: string): Promise<ClientKey> {
  return { ...key, alg, privateKey: (await importJWK(key.privateJwk, alg)) as CryptoKey };
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}

interface AssertionOptions {
  clientId?: string;
  claims?: JWTPayload;
  header?: Record<string, unknown>;
}

/** A client assertion as a well-behaved client makes it; options bend one rule at a time. */
function assertion(key: ClientKey, options: AssertionOptions = {}): Promise<string> {
  const clientId = options.clientId ?? 'pharmacy-sync';
  return new SignJWT({
    iss: clientId,
    sub: clientId,
    aud: TOKEN_URL,
    exp: now() + 240,
    jti: randomUUID(),
    ...options.claims,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...options.header })
    .sign(key.privateKey);
}

function tokenForm(clientAssertion: string, scope = 'system/Patient.rs'): Record<string, string> {
  return {
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: JWT_BEARER_ASSERTION,
    client_assertion: clientAssertion,
  };
}

describe('SMART Backend Services', () => {
  let client: MongoClient;
  let db: Db;
  let es: ClientKey;
  let rs: ClientKey;
  let registry: ClientRegistry;
  let signer: SigningKey;
  let app: express.Express;
  let verifier: TokenVerifier;
  let keyServer: JwksServer;
  let keyServerKey: ClientKey;

  async function appOn(database: Db, options: { ttl?: number } = {}): Promise<express.Express> {
    const served = express();
    served.use(
      '/auth',
      backendServicesRouter({
        registry,
        issuer: ISSUER,
        tokenEndpointUrl: TOKEN_URL,
        audience: FHIR_BASE,
        signer: await loadOrCreateSigningKey(database),
        replayStore: await createReplayStore(database),
        accessTokenTtlSeconds: options.ttl,
      }),
    );
    return served;
  }

  function postToken(form: Record<string, string> | string, target: express.Express = app) {
    return request(target).post('/auth/token').type('form').send(form);
  }

  /** An OAuth error answer (RFC 6749 §5.2) that repeats nothing of the assertion. */
  function expectOAuthError(
    response: request.Response,
    status: number,
    error: string,
    description: RegExp,
    sent?: string,
  ): void {
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.body).toEqual({ error, error_description: expect.stringMatching(description) });
    if (sent) expect(response.text).not.toContain(sent.split('.')[1]);
  }

  beforeAll(async () => {
    const uri = process.env.MONGODB_URI;
    if (!uri) throw new Error('MONGODB_URI is not set: the jest global setup starts the database engine');
    client = await MongoClient.connect(uri);
    db = client.db(databaseNameFor(__filename));
    await db.dropDatabase();
    es = await clientKey('ES384', 'es-1');
    rs = await clientKey('RS384', 'rs-1');
    keyServerKey = await clientKey('ES384', 'hosted-1');
    keyServer = await startJwksServer({ keys: [keyServerKey.publicJwk] });
    registry = await clientRegistryFromJson({
      clients: [
        {
          client_id: 'pharmacy-sync',
          jwks: { keys: [es.publicJwk, rs.publicJwk] },
          scope: 'system/*.rs system/MedicationDispense.c',
          clearance: ['42CFRPart2', 'SUD'],
          labels: [PART2_LABEL],
          organization: 'Organization/part2-program',
          purpose_of_use: 'TREAT',
        },
        { client_id: 'hosted-keys', jwks_uri: keyServer.url, scope: 'system/Patient.r' },
        { client_id: 'keys-down', jwks_uri: await unreachableUrl(), scope: 'system/Patient.r' },
      ],
    });
    app = await appOn(db);
    signer = await loadOrCreateSigningKey(db);
    verifier = ownTokenVerifier({ key: signer, issuer: ISSUER, audience: FHIR_BASE });
  });

  afterAll(async () => {
    await keyServer.close();
    await db.dropDatabase();
    await client.close();
  });

  describe('POST /auth/token', () => {
    it('issues a short-lived access token for a valid ES384 assertion', async () => {
      const response = await postToken(tokenForm(await assertion(es), 'system/Patient.rs system/MedicationDispense.c'));
      expect(response.status).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.headers['pragma']).toBe('no-cache');
      expect(response.body).toEqual({
        access_token: expect.any(String),
        token_type: 'bearer',
        expires_in: 300,
        scope: 'system/Patient.rs system/MedicationDispense.c',
      });
      const claims = await verifier.verify(response.body.access_token);
      expect(claims).toMatchObject({
        iss: ISSUER,
        sub: 'pharmacy-sync',
        client_id: 'pharmacy-sync',
        aud: FHIR_BASE,
        scope: 'system/Patient.rs system/MedicationDispense.c',
        clearance: ['42CFRPart2', 'SUD'],
        organization: 'Organization/part2-program',
        purpose_of_use: 'TREAT',
      });
      expect((claims.exp as number) - (claims.iat as number)).toBe(300);
      expect(claims.jti).toEqual(expect.any(String));
      expect(decodeProtectedHeader(response.body.access_token)).toMatchObject({ alg: 'ES256', kid: signer.kid });
    });

    it('accepts an RS384 assertion, a matching client_id, and a configured lifetime', async () => {
      const shortLived = await appOn(db, { ttl: 60 });
      const response = await postToken({ ...tokenForm(await assertion(rs)), client_id: 'pharmacy-sync' }, shortLived);
      expect(response.status).toBe(200);
      expect(response.body.expires_in).toBe(60);
      const claims = decodeJwt(response.body.access_token);
      expect((claims.exp as number) - (claims.iat as number)).toBe(60);
    });

    it('leaves out the claims a registration does not set', async () => {
      const response = await postToken(
        tokenForm(await assertion(keyServerKey, { clientId: 'hosted-keys' }), 'system/Patient.r'),
      );
      expect(response.status).toBe(200);
      const claims = await verifier.verify(response.body.access_token);
      expect(claims.client_id).toBe('hosted-keys');
      expect(claims).not.toHaveProperty('clearance');
      expect(claims).not.toHaveProperty('organization');
      expect(claims).not.toHaveProperty('purpose_of_use');
    });

    it('refuses a replayed assertion', async () => {
      const used = await assertion(es);
      expect((await postToken(tokenForm(used))).status).toBe(200);
      const replay = await postToken(tokenForm(used));
      expectOAuthError(replay, 401, 'invalid_client', /jti has been used before/, used);
    });

    it('lets exactly one of two concurrent requests with one jti through', async () => {
      const once = await assertion(es);
      const responses = await Promise.all([postToken(tokenForm(once)), postToken(tokenForm(once))]);
      expect(responses.map((r) => r.status).sort()).toEqual([200, 401]);
    });

    it('lets exactly one through when two server processes on one database get the same assertion', async () => {
      const secondClient = await MongoClient.connect(process.env.MONGODB_URI as string);
      try {
        const secondProcess = await appOn(secondClient.db(db.databaseName));
        const once = await assertion(rs);
        const responses = await Promise.all([postToken(tokenForm(once)), postToken(tokenForm(once), secondProcess)]);
        expect(responses.map((r) => r.status).sort()).toEqual([200, 401]);
        // Both processes sign with the one key in the database, so either's token verifies everywhere.
        const winner = responses.find((r) => r.status === 200) as request.Response;
        await expect(verifier.verify(winner.body.access_token)).resolves.toMatchObject({ sub: 'pharmacy-sync' });
      } finally {
        await secondClient.close();
      }
    });

    it('records the jti with the time until which the assertion could still be accepted', async () => {
      const jti = randomUUID();
      const exp = now() + 200;
      expect((await postToken(tokenForm(await assertion(es, { claims: { jti, exp } })))).status).toBe(200);
      const stored = await db
        .collection<{ _id: string; expiresAt: Date }>(JTI_COLLECTION)
        .findOne({ _id: `13:pharmacy-sync:${jti}` });
      expect(stored?.expiresAt).toEqual(new Date((exp + 30) * 1000));
    });

    it('does not use up the jti of an assertion it refused', async () => {
      const jti = randomUUID();
      const impostor = await clientKey('ES384', es.kid);
      expect((await postToken(tokenForm(await assertion(impostor, { claims: { jti } })))).status).toBe(401);
      expect((await postToken(tokenForm(await assertion(es, { claims: { jti } })))).status).toBe(200);
    });

    it('refuses an expired assertion', async () => {
      const expired = await assertion(es, { claims: { exp: now() - 120 } });
      expectOAuthError(await postToken(tokenForm(expired)), 401, 'invalid_client', /token expired/, expired);
    });

    it('refuses an assertion whose exp is more than five minutes ahead', async () => {
      const longLived = await assertion(es, { claims: { exp: now() + 600 } });
      expectOAuthError(
        await postToken(tokenForm(longLived)),
        401,
        'invalid_client',
        /more than five minutes/,
        longLived,
      );
      // Five minutes exactly is allowed.
      expect((await postToken(tokenForm(await assertion(es, { claims: { exp: now() + 300 } })))).status).toBe(200);
    });

    it('refuses an assertion for another audience', async () => {
      for (const aud of [FHIR_BASE, ISSUER, 'https://other.example.test/auth/token']) {
        const misdirected = await assertion(es, { claims: { aud } });
        expectOAuthError(await postToken(tokenForm(misdirected)), 401, 'invalid_client', /wrong audience/, misdirected);
      }
    });

    it('refuses assertions signed with other algorithms (RS256, PS384, HS256, none)', async () => {
      const rs256 = await assertion(await sameKeyFor(rs, 'RS256'));
      expectOAuthError(await postToken(tokenForm(rs256)), 401, 'invalid_client', /RS384 or ES384/, rs256);
      const ps384 = await assertion(await sameKeyFor(rs, 'PS384'));
      expectOAuthError(await postToken(tokenForm(ps384)), 401, 'invalid_client', /RS384 or ES384/, ps384);
      const hs256 = await new SignJWT({ iss: 'pharmacy-sync', sub: 'pharmacy-sync', aud: TOKEN_URL, jti: 'x' })
        .setProtectedHeader({ alg: 'HS256', kid: es.kid, typ: 'JWT' })
        .setExpirationTime('2m')
        .sign(new TextEncoder().encode(JSON.stringify(es.publicJwk)));
      expectOAuthError(await postToken(tokenForm(hs256)), 401, 'invalid_client', /RS384 or ES384/, hs256);
      const header = Buffer.from(JSON.stringify({ alg: 'none', kid: es.kid, typ: 'JWT' })).toString('base64url');
      const body = Buffer.from(JSON.stringify({ iss: 'pharmacy-sync', sub: 'pharmacy-sync', aud: TOKEN_URL })).toString(
        'base64url',
      );
      expectOAuthError(await postToken(tokenForm(`${header}.${body}.`)), 401, 'invalid_client', /RS384 or ES384/);
    });

    it('refuses an unknown client, a sub that is not the client, and a client_id that is not the assertion’s', async () => {
      const unknown = await assertion(es, { clientId: 'nobody' });
      expectOAuthError(await postToken(tokenForm(unknown)), 401, 'invalid_client', /not registered/, unknown);
      const otherSubject = await assertion(es, { claims: { sub: 'someone-else' } });
      expectOAuthError(await postToken(tokenForm(otherSubject)), 401, 'invalid_client', /wrong subject/, otherSubject);
      const mismatch = { ...tokenForm(await assertion(es)), client_id: 'hosted-keys' };
      expectOAuthError(await postToken(mismatch), 401, 'invalid_client', /client_id does not match/);
    });

    it('refuses a key the client did not register, a forged signature, a missing kid and a foreign jku', async () => {
      const unknownKid = await assertion({ ...es, kid: 'es-9' });
      expectOAuthError(await postToken(tokenForm(unknownKid)), 401, 'invalid_client', /unknown signing key/);
      const impostor = await clientKey('ES384', es.kid);
      expectOAuthError(
        await postToken(tokenForm(await assertion(impostor))),
        401,
        'invalid_client',
        /signature invalid/,
      );
      const withoutKid = await new SignJWT({ iss: 'pharmacy-sync', sub: 'pharmacy-sync', aud: TOKEN_URL, jti: 'k' })
        .setProtectedHeader({ alg: 'ES384', typ: 'JWT' })
        .setExpirationTime('2m')
        .sign(es.privateKey);
      expectOAuthError(await postToken(tokenForm(withoutKid)), 401, 'invalid_client', /no kid/);
      const foreignJku = await assertion(es, { header: { jku: 'https://evil.example.test/jwks.json' } });
      expectOAuthError(await postToken(tokenForm(foreignJku)), 401, 'invalid_client', /jku/);
      const hostedJku = await assertion(keyServerKey, { clientId: 'hosted-keys', header: { jku: keyServer.url } });
      expect((await postToken(tokenForm(hostedJku, 'system/Patient.r'))).status).toBe(200);
    });

    it('refuses an assertion without jti or without the JWT typ, and one that is not a JWT', async () => {
      const noJti = await assertion(es, { claims: { jti: undefined } });
      expectOAuthError(await postToken(tokenForm(noJti)), 401, 'invalid_client', /no jti/);
      const otherType = await assertion(es, { header: { typ: 'at+jwt' } });
      expectOAuthError(await postToken(tokenForm(otherType)), 401, 'invalid_client', /wrong token type/);
      expectOAuthError(await postToken(tokenForm('not-a-jwt')), 401, 'invalid_client', /not a signed JWT/);
    });

    it('refuses a client whose JWK Set URL cannot be reached', async () => {
      const stranded = await assertion(keyServerKey, { clientId: 'keys-down' });
      expectOAuthError(
        await postToken(tokenForm(stranded, 'system/Patient.r')),
        401,
        'invalid_client',
        /signing keys unavailable/,
      );
    });

    it('narrows the requested scopes to those the client may be given', async () => {
      const requested =
        'system/*.cruds system/Observation.rs patient/*.rs user/Patient.r system/Practitioner.read openid';
      const response = await postToken(tokenForm(await assertion(es), requested));
      expect(response.status).toBe(200);
      const granted = 'system/*.rs system/MedicationDispense.c system/Observation.rs system/Practitioner.read';
      expect(response.body.scope).toBe(granted);
      expect((await verifier.verify(response.body.access_token)).scope).toBe(granted);
    });

    it('answers invalid_scope when no requested scope is allowed, or none is requested', async () => {
      const outside = await postToken(tokenForm(await assertion(es), 'patient/*.rs system/Patient.cud'));
      expectOAuthError(outside, 400, 'invalid_scope', /none of the requested scopes/);
      const { scope: _none, ...withoutScope } = tokenForm(await assertion(es));
      expectOAuthError(await postToken(withoutScope), 400, 'invalid_scope', /scope is required/);
    });

    it('answers the grant and parameter errors of RFC 6749', async () => {
      const form = tokenForm(await assertion(es));
      const { grant_type: _grant, ...noGrant } = form;
      expectOAuthError(await postToken(noGrant), 400, 'invalid_request', /grant_type is required/);
      expectOAuthError(
        await postToken({ ...form, grant_type: 'authorization_code' }),
        400,
        'unsupported_grant_type',
        /client_credentials/,
      );
      expectOAuthError(
        await postToken({ ...form, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' }),
        401,
        'invalid_client',
        /client_assertion_type/,
      );
      const { client_assertion: _assertion, ...noAssertion } = form;
      expectOAuthError(await postToken(noAssertion), 401, 'invalid_client', /client_assertion is required/);
      const twice = `${new URLSearchParams(form).toString()}&scope=system%2FObservation.rs`;
      expectOAuthError(await postToken(twice), 400, 'invalid_request', /scope is given more than once/);
    });

    it('answers a body that is not form data in OAuth terms', async () => {
      const form = tokenForm(await assertion(es));
      const asJson = await request(app).post('/auth/token').send(form);
      expectOAuthError(asJson, 400, 'invalid_request', /x-www-form-urlencoded/);
      const compressed = await request(app)
        .post('/auth/token')
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .set('Content-Encoding', 'gzip')
        .send(gzipSync(new URLSearchParams(form).toString()));
      expectOAuthError(compressed, 415, 'invalid_request', /uncompressed/);
      const huge = await postToken({ ...form, scope: 'system/Patient.r '.repeat(5000) });
      expectOAuthError(huge, 413, 'invalid_request', /too large/);
      const get = await request(app).get('/auth/token');
      expectOAuthError(get, 405, 'invalid_request', /POST/);
      expect(get.headers['allow']).toBe('POST');
    });
  });

  describe('ownTokenVerifier', () => {
    async function issued(): Promise<string> {
      const response = await postToken(tokenForm(await assertion(es)));
      expect(response.status).toBe(200);
      return response.body.access_token;
    }

    async function expectRefused(tokenVerifier: TokenVerifier, token: string, reason: string): Promise<void> {
      const error = await tokenVerifier.verify(token).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidTokenError);
      expect((error as Error).message).toBe(reason);
    }

    it('refuses a minted token whose claims were changed', async () => {
      const [header, payload, signature] = (await issued()).split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      const widened = Buffer.from(JSON.stringify({ ...claims, scope: 'system/*.cruds', clearance: ['*'] }));
      await expectRefused(verifier, `${header}.${widened.toString('base64url')}.${signature}`, 'signature invalid');
    });

    it('refuses a token for another audience or issuer, and one signed by another server’s key', async () => {
      const token = await issued();
      await expectRefused(
        ownTokenVerifier({ key: signer, issuer: ISSUER, audience: `${BASE}/other-fhir` }),
        token,
        'wrong audience',
      );
      await expectRefused(
        ownTokenVerifier({ key: signer, issuer: 'https://elsewhere.test/auth', audience: FHIR_BASE }),
        token,
        'wrong issuer',
      );
      const otherDb = client.db(`${db.databaseName}_other`);
      try {
        const otherKey = await loadOrCreateSigningKey(otherDb);
        expect(otherKey.kid).not.toBe(signer.kid);
        await expectRefused(
          ownTokenVerifier({ key: otherKey, issuer: ISSUER, audience: FHIR_BASE }),
          token,
          'signature invalid',
        );
      } finally {
        await otherDb.dropDatabase();
      }
    });

    it('refuses an expired minted token and a JWT of another type signed with the right key', async () => {
      const expired = await new SignJWT({ client_id: 'pharmacy-sync', scope: 'system/*.rs' })
        .setProtectedHeader({ alg: 'ES256', kid: signer.kid, typ: 'at+jwt' })
        .setIssuer(ISSUER)
        .setSubject('pharmacy-sync')
        .setAudience(FHIR_BASE)
        .setExpirationTime(now() - 120)
        .sign(signer.privateKey);
      await expectRefused(verifier, expired, 'token expired');
      const untyped = await new SignJWT({ client_id: 'pharmacy-sync', scope: 'system/*.rs' })
        .setProtectedHeader({ alg: 'ES256', kid: signer.kid })
        .setIssuer(ISSUER)
        .setSubject('pharmacy-sync')
        .setAudience(FHIR_BASE)
        .setExpirationTime('2m')
        .sign(signer.privateKey);
      await expectRefused(verifier, untyped, 'wrong token type');
      await expectRefused(verifier, 'a.b.c', 'malformed token');
    });
  });

  describe('loadOrCreateSigningKey', () => {
    it('gives every process on one database the same key, created once', async () => {
      const fresh = `${db.databaseName}_keys`;
      const clients = await Promise.all([1, 2, 3].map(() => MongoClient.connect(process.env.MONGODB_URI as string)));
      try {
        await clients[0].db(fresh).dropDatabase();
        const keys = await Promise.all(clients.map((c) => loadOrCreateSigningKey(c.db(fresh))));
        expect(new Set(keys.map((k) => k.kid)).size).toBe(1);
        expect(
          await clients[0]
            .db(fresh)
            .collection<{ _id: string }>('_settings')
            .countDocuments({ _id: 'auth-signing-key' }),
        ).toBe(1);
        expect((await loadOrCreateSigningKey(clients[1].db(fresh))).kid).toBe(keys[0].kid);
        expect(keys[0].publicJwk).not.toHaveProperty('d');
        expect(keys[0].publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: keys[0].kid, alg: 'ES256' });
      } finally {
        await clients[0].db(fresh).dropDatabase();
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    it('publishes the public key at /auth/jwks.json', async () => {
      const response = await request(app).get('/auth/jwks.json');
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ keys: [signer.publicJwk] });
      expect(JSON.stringify(response.body)).not.toContain('"d"');
    });
  });

  describe('replay store', () => {
    it('deletes the records of expired assertions and keeps the others', async () => {
      const store = await createReplayStore(db, { sweepIntervalMs: 0 });
      const jtis = db.collection<{ _id: string }>(JTI_COLLECTION);
      const past = new Date(Date.now() - 60_000);
      const future = new Date(Date.now() + 60_000);
      expect(await store.claim('sweeper', 'old', past)).toBe(true);
      expect(await store.claim('sweeper', 'live', future)).toBe(true);
      expect(await jtis.countDocuments({ _id: { $in: ['7:sweeper:old', '7:sweeper:live'] } })).toBe(1);
      expect(await store.claim('sweeper', 'live', future)).toBe(false);
    });

    it('keeps the jtis of different clients apart', async () => {
      const store = await createReplayStore(db);
      const later = new Date(Date.now() + 60_000);
      expect(await store.claim('a:b', 'c', later)).toBe(true);
      expect(await store.claim('a', 'b:c', later)).toBe(true);
      expect(await store.claim('a', 'b:c', later)).toBe(false);
    });
  });

  describe('discovery', () => {
    it('describes the endpoint for .well-known/smart-configuration', () => {
      expect(backendServicesDiscovery(TOKEN_URL)).toEqual({
        token_endpoint: TOKEN_URL,
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
        token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
        capabilities: ['client-confidential-asymmetric'],
      });
    });
  });
});

describe('grantScopes', () => {
  const allowed = ['system/*.rs', 'system/MedicationDispense.c', 'system/Observation.cruds?category=laboratory'];

  it.each([
    ['system/Patient.rs', ['system/Patient.rs']],
    ['system/Patient.r', ['system/Patient.r']],
    ['system/*.read', ['system/*.read']],
    ['system/Patient.*', ['system/Patient.rs']],
    ['system/MedicationDispense.write', ['system/MedicationDispense.c']],
    ['system/Observation.cu', ['system/Observation.cu?category=laboratory']],
    ['system/Observation.rs?category=laboratory', ['system/Observation.rs?category=laboratory']],
    ['system/Observation.u?category=vital-signs', []],
    ['system/Observation.rs?category=vital-signs', ['system/Observation.rs?category=vital-signs']],
    ['patient/*.rs', []],
    ['system/Patient.cud', []],
    ['openid fhirUser', []],
    ['system/Patient.xyz garbage', []],
  ])('%s → %j', (requested, granted) => {
    expect(grantScopes(requested.split(' '), allowed)).toEqual(granted);
  });

  it('grants context scopes only when the registration lists them, and never twice', () => {
    expect(grantScopes(['openid', 'system/Patient.r', 'system/Patient.r'], ['openid', 'system/*.rs'])).toEqual([
      'openid',
      'system/Patient.r',
    ]);
  });
});

describe('client registry', () => {
  let keys: { es: JWK; p256: JWK; privateEs: JWK };

  beforeAll(async () => {
    const es = await generateKeyPair('ES384', { extractable: true });
    const p256 = await generateKeyPair('ES256');
    keys = {
      es: { ...(await exportJWK(es.publicKey)), kid: 'k1' },
      p256: { ...(await exportJWK(p256.publicKey)), kid: 'k2' },
      privateEs: { ...(await exportJWK(es.privateKey)), kid: 'k3' },
    };
  });

  function entry(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return { client_id: 'ehr', jwks: { keys: [keys.es] }, scope: 'system/*.rs', ...overrides };
  }

  async function problemsOf(value: unknown): Promise<string> {
    const error = await clientRegistryFromJson(value).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientRegistryError);
    return (error as Error).message;
  }

  it('reads a registration file and gives each client its write labels', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meds-fhir-clients-'));
    const path = join(dir, 'clients.json');
    const labels = [PART2_LABEL, { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }];
    writeFileSync(
      path,
      JSON.stringify({
        clients: [
          entry({ labels, clearance: ['*'] }),
          entry({ client_id: 'reader', jwks_uri: 'https://keys.example.test/jwks', jwks: undefined }),
        ],
      }),
    );
    const registry = await loadClientRegistry(path);
    expect(registry.clients.map((c) => c.clientId)).toEqual(['ehr', 'reader']);
    expect(registry.get('ehr')).toMatchObject({ scopes: ['system/*.rs'], clearance: ['*'], labels });
    expect(registry.get('reader')?.jwksUri).toBe('https://keys.example.test/jwks');
    expect(registry.writeLabels('ehr')).toEqual(labels);
    expect(registry.writeLabels('reader')).toEqual([]);
    expect(registry.writeLabels('nobody')).toEqual([]);
    registry.writeLabels('ehr').pop();
    expect(registry.writeLabels('ehr')).toHaveLength(2);
    expect(registry.get('__proto__')).toBeUndefined();
  });

  it('names the file when it cannot be read or is not JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meds-fhir-clients-'));
    await expect(loadClientRegistry(join(dir, 'missing.json'))).rejects.toThrow(
      /missing\.json: cannot be read \(ENOENT\)/,
    );
    writeFileSync(join(dir, 'broken.json'), '{"clients": [');
    await expect(loadClientRegistry(join(dir, 'broken.json'))).rejects.toThrow(/broken\.json: is not JSON/);
  });

  it('refuses a file of the wrong shape, naming each place', async () => {
    expect(await problemsOf([])).toMatch(/the top level: (must|should) be object/);
    expect(await problemsOf({})).toMatch(/clients/);
    const message = await problemsOf({
      clients: [
        entry({ jwks_url: 'https://x.test' }),
        { client_id: 'no-scope', jwks: { keys: [keys.es] } },
        entry({ clearance: ['SECRET'] }),
        entry({ labels: [{ system: 'http://x.test' }] }),
        entry({ organization: 'Practitioner/1' }),
        entry({ jwks_uri: 'ftp://keys.test/jwks' }),
      ],
    });
    expect(message).toMatch(/clients\[0\]: "jwks_url" is not a known member/);
    expect(message).toMatch(/clients\[1\]: .*scope/);
    expect(message).toMatch(/clients\[2\]\.clearance\[0\]: must be one of/);
    expect(message).toMatch(/clients\[3\]\.labels\[0\]: .*code/);
    expect(message).toMatch(/clients\[4\]\.organization/);
    expect(message).toMatch(/clients\[5\]\.jwks_uri/);
  });

  it('refuses registrations it could never authenticate or that contradict themselves', async () => {
    const message = await problemsOf({
      clients: [
        entry({ jwks_uri: 'https://keys.test/jwks' }),
        entry({ client_id: 'no-keys', jwks: undefined }),
        entry({ client_id: 'private', jwks: { keys: [keys.privateEs] } }),
        entry({ client_id: 'p256', jwks: { keys: [keys.p256] } }),
        entry({ client_id: 'twice-kid', jwks: { keys: [keys.es, keys.es] } }),
        entry({ client_id: 'plain-http', jwks: undefined, jwks_uri: 'http://keys.example.test/jwks' }),
        entry({ client_id: 'bad-scope', scope: 'system/*.rs system/Patient.readwrite' }),
        entry({ client_id: 'star', clearance: ['*', 'SUD'] }),
        entry({ client_id: 'wrong-alg', jwks: { keys: [{ ...keys.es, alg: 'ES256' }] } }),
        entry({ client_id: 'ehr' }),
      ],
    });
    expect(message).toMatch(/clients\[0\]: give exactly one of jwks/);
    expect(message).toMatch(/clients\[1\]: give exactly one of jwks/);
    expect(message).toMatch(/clients\[2\]\.jwks\.keys\[0\]: holds private key material \(d\)/);
    expect(message).toMatch(/clients\[3\]\.jwks\.keys\[0\]: an EC P-256 key cannot verify RS384 or ES384/);
    expect(message).toMatch(/clients\[4\]\.jwks\.keys\[1\]: kid "k1" is used twice/);
    expect(message).toMatch(/clients\[5\]\.jwks_uri: must be an https URL/);
    expect(message).toMatch(/clients\[6\]\.scope: "system\/Patient\.readwrite" is not a SMART scope/);
    expect(message).toMatch(/clients\[7\]\.clearance: "\*" stands alone/);
    expect(message).toMatch(/clients\[8\]\.jwks\.keys\[0\]: alg ES256 is not ES384/);
    expect(message).toMatch(/clients\[9\]\.client_id: "ehr" is registered twice/);
  });

  it('accepts plain http for a key server on this machine', async () => {
    const registry = await clientRegistryFromJson({
      clients: [entry({ jwks: undefined, jwks_uri: 'http://127.0.0.1:9999/jwks' })],
    });
    expect(registry.get('ehr')?.jwksUri).toBe('http://127.0.0.1:9999/jwks');
  });
});
