// `npm run token -- --scope '...' [--patient ID] [--fhir-user Practitioner/ID] [--clearance CODE,...]`:
// prints a bearer token signed with AUTH_HS256_SECRET, or with development mode's secret in DATA_DIR
// (made by the server on its first start). For development and tests, never for production users.
import { parseArgs } from 'node:util';
import { signToken } from './dev-token.mjs';

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
console.log(await signToken(claims, { subject: values.sub ?? values['fhir-user'], expiresIn }));
