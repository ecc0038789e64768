// Signs a bearer token the way development mode verifies it: with AUTH_HS256_SECRET, or with the
// secret the server keeps in DATA_DIR (made on its first start). Used by `npm run token` and `npm run bench`.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SignJWT } from 'jose';

function secret() {
  if (process.env.AUTH_HS256_SECRET) return process.env.AUTH_HS256_SECRET;
  const path = join(resolve(process.env.DATA_DIR ?? './data'), 'auth', 'dev-hs256-secret');
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    console.error(`No secret at ${path}: start the server once (npm start) so development mode makes one.`);
    process.exit(1);
  }
}

export async function signToken(claims, { subject, expiresIn = 3600 } = {}) {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(subject ?? 'npm-run-token')
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .setJti(randomUUID());
  if (process.env.AUTH_ISSUER) jwt = jwt.setIssuer(process.env.AUTH_ISSUER);
  if (process.env.AUTH_AUDIENCE) jwt = jwt.setAudience(process.env.AUTH_AUDIENCE);
  return jwt.sign(Buffer.from(secret(), 'utf8'));
}
