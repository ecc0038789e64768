// Loads examples/ into a running meds-fhir (or any FHIR R4 server) with PUT, so re-running it is
// harmless. Usage: npm run examples:load -- [http://localhost:8080/fhir]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signToken } from './dev-token.mjs';

const base = (process.argv[2] ?? process.env.FHIR_BASE_URL ?? 'http://localhost:8080/fhir').replace(/\/$/, '');
// FHIR_TOKEN for any server; for meds-fhir in development mode, a token signed like `npm run token` does.
const token =
  process.env.FHIR_TOKEN ??
  (await signToken({ scope: 'system/*.cruds', clearance: ['*'] }, { subject: 'examples-load' }));
const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples');

function files(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return files(path);
      return name.endsWith('.json') ? [path] : [];
    });
}

let failed = 0;
for (const file of files(root)) {
  const resource = JSON.parse(readFileSync(file, 'utf8'));
  const url = `${base}/${resource.resourceType}/${resource.id}`;
  const response = await fetch(url, {
    method: 'PUT',
    headers: {
      'content-type': 'application/fhir+json',
      accept: 'application/fhir+json',
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify(resource),
  });
  const line = `${response.status} PUT ${resource.resourceType}/${resource.id}`;
  if (response.ok) {
    console.log(line);
  } else {
    failed++;
    console.error(`${line}\n${await response.text()}`);
  }
}
process.exit(failed ? 1 : 0);
