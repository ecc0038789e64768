// REST core benchmark: creates/s and reads/s with p50/p99 latency against any FHIR R4 base URL.
// Usage: npm run bench -- rest [http://localhost:8080/fhir] (env: BENCH_SECONDS, BENCH_CONNECTIONS)
import autocannon from 'autocannon';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);

function medicationRequest(i) {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: {
      coding: [
        {
          system: 'http://www.nlm.nih.gov/research/umls/rxnorm',
          code: '1010606',
          display: 'buprenorphine 8 MG / naloxone 2 MG Sublingual Film [Suboxone]',
        },
      ],
    },
    subject: { reference: `Patient/bench-${i % 500}` },
    authoredOn: '2026-09-01',
    requester: { reference: 'Practitioner/bench-prescriber' },
    dosageInstruction: [{ text: '2 films daily', timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } } }],
    dispenseRequest: {
      quantity: { value: 56, unit: 'film' },
      expectedSupplyDuration: { value: 28, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
    },
  };
}

/** The bearer token every request carries (set by scripts/bench.mjs), if the server checks tokens. */
let authorization;
export function useAuthorization(value) {
  authorization = value;
}

function run(options) {
  if (authorization) options = { ...options, headers: { ...options.headers, authorization } };
  return new Promise((resolve, reject) => {
    autocannon({ connections, duration: seconds, ...options }, (error, result) =>
      error ? reject(error) : resolve(result),
    );
  });
}

function row(name, result) {
  const ok = result['2xx'];
  return {
    scenario: name,
    'req/s': Math.round(ok / (result.duration || seconds)),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    requests: result.requests.total,
    'non-2xx': result.non2xx,
    errors: result.errors,
  };
}

export async function restBenchmark(base) {
  const created = [];
  let i = 0;
  const creates = await run({
    url: `${base}/MedicationRequest`,
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', prefer: 'return=minimal' },
    requests: [
      {
        setupRequest: (req) => ({ ...req, body: JSON.stringify(medicationRequest(i++)) }),
        onResponse: (status, _body, _context, headers) => {
          const location = headers?.location ?? headers?.Location;
          if (status === 201 && location)
            created.push(
              location
                .replace(/\/_history\/.*$/, '')
                .split('/')
                .pop(),
            );
        },
      },
    ],
  });
  if (created.length === 0) throw new Error('no resource was created; is the server at ' + base + '?');
  const reads = await run({
    url: base,
    requests: [
      {
        setupRequest: (req) => ({
          ...req,
          path: `${new URL(base).pathname}/MedicationRequest/${created[Math.floor(Math.random() * created.length)]}`,
        }),
      },
    ],
  });
  return [row('create MedicationRequest (POST)', creates), row('read MedicationRequest (GET by id)', reads)];
}
