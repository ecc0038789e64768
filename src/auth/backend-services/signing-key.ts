import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
} from 'jose';
import type { Db } from 'mongodb';
import { SETTINGS_COLLECTION } from '../../fhir/page-token';
import { withEngineRetry } from '../../store/engine-errors';

const SIGNING_KEY_ID = 'auth-signing-key';

export const ACCESS_TOKEN_ALGORITHM = 'ES256';

/** The key the token endpoint signs access tokens with, and the public half that verifies them. */
export interface SigningKey {
  alg: typeof ACCESS_TOKEN_ALGORITHM;
  /** The RFC 7638 thumbprint of the public key. */
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

interface SigningKeySetting {
  _id: string;
  /** The private JWK (with kid and alg). */
  jwk: JWK;
  createdAt: Date;
}

async function newSetting(): Promise<SigningKeySetting> {
  const { privateKey } = await generateKeyPair(ACCESS_TOKEN_ALGORITHM, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const { d: _private, ...publicJwk } = jwk;
  return {
    _id: SIGNING_KEY_ID,
    jwk: { ...jwk, kid: await calculateJwkThumbprint(publicJwk), alg: ACCESS_TOKEN_ALGORITHM },
    createdAt: new Date(),
  };
}

/**
 * The server's token signing key, from the database. The first process to start creates it with an
 * insert that only one process can win; every process then reads the winner, so tokens minted by one
 * are accepted by all. Whoever can read the database can mint tokens: protect it like the data.
 */
export async function loadOrCreateSigningKey(db: Db): Promise<SigningKey> {
  const settings = db.collection<SigningKeySetting>(SETTINGS_COLLECTION);
  let setting = await withEngineRetry(() => settings.findOne({ _id: SIGNING_KEY_ID }));
  if (!setting) {
    const candidate = await newSetting();
    try {
      await withEngineRetry(() => settings.insertOne(candidate));
    } catch (error) {
      if ((error as { code?: unknown }).code !== 11000) throw error;
    }
    setting = await withEngineRetry(() => settings.findOne({ _id: SIGNING_KEY_ID }));
  }
  if (!setting?.jwk?.d || !setting.jwk.kid)
    throw new Error(`${SETTINGS_COLLECTION}: the token signing key is unreadable`);
  const { d: _private, ...publicJwk } = setting.jwk;
  return {
    alg: ACCESS_TOKEN_ALGORITHM,
    kid: setting.jwk.kid,
    privateKey: (await importJWK(setting.jwk, ACCESS_TOKEN_ALGORITHM)) as CryptoKey,
    publicKey: (await importJWK(publicJwk, ACCESS_TOKEN_ALGORITHM)) as CryptoKey,
    publicJwk: { ...publicJwk, use: 'sig' },
  };
}

/** The public key set a resource server elsewhere could verify this server's access tokens with. */
export function publicJwks(key: SigningKey): JSONWebKeySet {
  return { keys: [key.publicJwk] };
}
