import express, { type Express } from 'express';
import { SignJWT, type JWTPayload } from 'jose';

/** The HS256 secret every test server verifies tokens with (AUTH_HS256_SECRET). */
export const TEST_SECRET = 'test-secret-of-at-least-thirty-two-characters';

/** A token signed with the test secret, valid for an hour unless the claims say otherwise. */
export async function tokenFor(claims: JWTPayload, secret = TEST_SECRET): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, exp: now + 3600, ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(secret));
}

/** What the tests written before access control run as: a system client cleared for everything. */
export const ADMIN_CLAIMS: JWTPayload = { sub: 'test-admin', scope: 'system/*.cruds', clearance: ['*'] };

let admin: Promise<string> | undefined;

/** `Bearer <token>` of ADMIN_CLAIMS, made once per test file. */
export function adminAuthorization(): Promise<string> {
  admin ??= tokenFor({ ...ADMIN_CLAIMS, exp: Math.floor(Date.now() / 1000) + 6 * 3600 }).then((t) => `Bearer ${t}`);
  return admin;
}

/** The settings every in-process test server verifies tokens with. */
export const TEST_AUTH = { mode: 'hs256' as const, hs256Secret: TEST_SECRET, accessTokenSeconds: 300 };

/**
 * The real app behind a step that only adds the administrator's token to requests that carry no
 * Authorization header: every request is still verified and authorized by the app itself.
 */
export function withAdminToken(app: Express): Express {
  const wrapper = express();
  wrapper.use((req, _res, next) => {
    if (req.headers.authorization !== undefined) return next();
    adminAuthorization().then((authorization) => {
      req.headers.authorization = authorization;
      next();
    }, next);
  }, app);
  return wrapper;
}
