// `npm run token -- --scope '...' [--patient ID] [--fhir-user Practitioner/ID] [--clearance CODE,...]`:
// prints a bearer token signed with AUTH_HS256_SECRET, or with development mode's secret in DATA_DIR
// (made by the server on its first start). For development and tests, never for production users.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';

const { values } = parseArgs({
  options: {
    scope: { type: 'string' },
    patient: { type: 'string' },
    'fhir-user': { type: 'string' },
    clearance: { type: 'string', multiple: true },
    organization: { type: 'string' },
    'purpose-of-use': { type: 'string' },
    sub: { type: 'string' },
    'expires-in': { type: 'string', default: '3600' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help || !values.scope) {
  console.error(
    "usage: npm run token -- --scope 'system/*.rs' [--patient ID] [--fhir-user Practitioner/ID] " +
      '[--clearance 42CFRPart2,PSY | *] [--organization Organization/ID] [--purpose-of-use TREAT] ' +
      '[--sub NAME] [--expires-in SECONDS]',
  );
  process.exit(values.help ? 0 : 2);
}

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

const expiresIn = Number(values['expires-in']);
if (!Number.isInteger(expiresIn) || expiresIn < 1) {
  console.error('--expires-in is a number of seconds');
  process.exit(2);
}
const clearance = (values.clearance ?? [])
  .flatMap((c) => c.split(','))
  .map((c) => c.trim())
  .filter(Boolean);
const claims = {
  scope: values.scope,
  ...(values.patient ? { patient: values.patient } : {}),
  ...(values['fhir-user'] ? { fhirUser: values['fhir-user'] } : {}),
  ...(clearance.length ? { clearance } : {}),
  ...(values.organization ? { organization: values.organization } : {}),
  ...(values['purpose-of-use'] ? { purpose_of_use: values['purpose-of-use'] } : {}),
};
const now = Math.floor(Date.now() / 1000);
let jwt = new SignJWT(claims)
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setSubject(values.sub ?? values['fhir-user'] ?? 'npm-run-token')
  .setIssuedAt(now)
  .setExpirationTime(now + expiresIn)
  .setJti(randomUUID());
if (process.env.AUTH_ISSUER) jwt = jwt.setIssuer(process.env.AUTH_ISSUER);
if (process.env.AUTH_AUDIENCE) jwt = jwt.setAudience(process.env.AUTH_AUDIENCE);
console.log(await jwt.sign(Buffer.from(secret(), 'utf8')));
