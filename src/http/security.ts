import cors from 'cors';
import type { RequestHandler } from 'express';
import helmet from 'helmet';

/** Headers a browser honours: no sniffing, nothing framed, and a policy that loads nothing (JSON only). */
export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    // An API answers cross-origin callers the CORS policy allows; CORP would block them in the browser.
    crossOriginResourcePolicy: false,
    strictTransportSecurity: false,
  });
}

const REQUEST_HEADERS = [
  'Authorization',
  'Content-Type',
  'Accept',
  'If-Match',
  'If-None-Match',
  'If-None-Exist',
  'If-Modified-Since',
  'Prefer',
  'X-Request-Id',
];
const RESPONSE_HEADERS = ['ETag', 'Location', 'Content-Location', 'Last-Modified', 'X-Request-Id', 'WWW-Authenticate'];

/** CORS for the configured origins only (CORS_ORIGINS; none by default): others get no CORS headers. */
export function corsPolicy(origins: string[]): RequestHandler {
  const allowed = new Set(origins);
  return cors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: REQUEST_HEADERS,
    exposedHeaders: RESPONSE_HEADERS,
    maxAge: 600,
  });
}

/** With AUTH=off, every answer says so (RFC 7234's Warning, code 299: a persistent warning). */
export function authorizationOffWarning(): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('Warning', '299 meds-fhir "Authorization is off (AUTH=off): every request has full access"');
    next();
  };
}
