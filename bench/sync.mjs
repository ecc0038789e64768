// EHR and pharmacy sync benchmark (issue 5) against any FHIR R4 base URL:
// - transaction Bundles of 100 entries (a patient with prescriptions, dispenses, statements and
//   observations, conditional entries as an EHR sends them) posted by several concurrent clients;
// - pharmacy-style single MedicationDispense POSTs with If-None-Exist, a tenth of them re-sends.
// Usage: npm run bench -- transaction dispense [base] (env: BENCH_SECONDS, BENCH_CLIENTS)
// Latencies are measured per request here (autocannon reports no p95).
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const run = randomUUID().slice(0, 8);

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Runs `clients` loops of `once` for the benchmark duration; returns latencies and failures. */
async function load(clients, once) {
  const latencies = [];
  let failures = 0;
  let firstFailure;
  const until = Date.now() + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const started = performance.now();
        const { ok, detail } = await once(n++);
        latencies.push(performance.now() - started);
        if (!ok) {
          failures++;
          firstFailure ??= detail;
        }
      }
    }),
  );
  if (firstFailure) console.error('first failure:', firstFailure);
  latencies.sort((a, b) => a - b);
  return { latencies, failures };
}

/** The bearer token every request carries (set by scripts/bench.mjs), if the server checks tokens. */
let authorization;
export function useAuthorization(value) {
  authorization = value;
}

async function post(url, body, headers = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', ...(authorization ? { authorization } : {}), ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text };
}

/** 100 entries: 1 patient, 12 prescriptions, 36 dispenses, 27 statements, 24 observations. */
function patientBundle(n) {
  const mrn = `${run}-${n}`;
  const patientUrl = `urn:uuid:${randomUUID()}`;
  const entries = [
    {
      fullUrl: patientUrl,
      resource: {
        resourceType: 'Patient',
        identifier: [{ system: 'urn:bench:mrn', value: mrn }],
        name: [{ family: `Bench${n}` }],
      },
      request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=urn:bench:mrn|${mrn}` },
    },
  ];
  const subject = { reference: patientUrl };
  const rxUrls = [];
  for (let r = 0; r < 12; r++) {
    const fullUrl = `urn:uuid:${randomUUID()}`;
    rxUrls.push(fullUrl);
    entries.push({
      fullUrl,
      resource: {
        resourceType: 'MedicationRequest',
        identifier: [{ system: 'urn:bench:rx', value: `${mrn}-${r}` }],
        status: 'active',
        intent: 'order',
        subject,
        medicationCodeableConcept: { coding: [{ system: RXNORM, code: '1010606' }] },
        authoredOn: `2026-0${1 + (r % 9)}-01`,
        dispenseRequest: {
          expectedSupplyDuration: { value: 28, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
        },
      },
      request: { method: 'PUT', url: `MedicationRequest?identifier=urn:bench:rx|${mrn}-${r}` },
    });
  }
  for (let d = 0; d < 36; d++) {
    entries.push({
      resource: {
        resourceType: 'MedicationDispense',
        identifier: [{ system: 'urn:bench:fill', value: `${mrn}-${d}` }],
        status: 'completed',
        subject,
        medicationCodeableConcept: { coding: [{ system: RXNORM, code: '1010606' }] },
        authorizingPrescription: [{ reference: rxUrls[d % 12] }],
        whenHandedOver: `2026-${String(1 + (d % 9)).padStart(2, '0')}-${String(1 + (d % 28)).padStart(2, '0')}`,
        daysSupply: { value: 28, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
      },
      request: { method: 'POST', url: 'MedicationDispense', ifNoneExist: `identifier=urn:bench:fill|${mrn}-${d}` },
    });
  }
  for (let s = 0; s < 27; s++) {
    entries.push({
      resource: {
        resourceType: 'MedicationStatement',
        status: s % 5 === 0 ? 'not-taken' : 'active',
        subject,
        medicationCodeableConcept: { coding: [{ system: RXNORM, code: '1010606' }] },
        effectiveDateTime: `2026-03-${String(1 + s).padStart(2, '0')}`,
      },
      request: { method: 'POST', url: 'MedicationStatement' },
    });
  }
  for (let o = 0; o < 24; o++) {
    entries.push({
      resource: {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '44261-6' }] },
        subject,
        effectiveDateTime: `2026-${String(1 + (o % 9)).padStart(2, '0')}-15`,
        valueInteger: o % 27,
      },
      request: { method: 'POST', url: 'Observation' },
    });
  }
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}

export async function transactionBenchmark(base) {
  const rows = [];
  for (const clients of [1, Number(process.env.BENCH_CLIENTS ?? 4)]) {
    const started = Date.now();
    const result = await load(clients, async (n) => {
      const { status, text } = await post(base, patientBundle(`${clients}-${n}`));
      return { ok: status === 200, detail: `${status} ${text.slice(0, 300)}` };
    });
    const elapsed = (Date.now() - started) / 1000;
    const bundles = result.latencies.length - result.failures;
    rows.push({
      scenario: `transaction, 100 entries, ${clients} client(s)`,
      'bundles/s': Number((bundles / elapsed).toFixed(2)),
      'resources/s': Math.round((bundles * 100) / elapsed),
      'p50 ms': Math.round(percentile(result.latencies, 50)),
      'p95 ms': Math.round(percentile(result.latencies, 95)),
      bundles,
      failures: result.failures,
    });
  }
  return rows;
}

export async function dispenseBenchmark(base) {
  const clients = Number(process.env.BENCH_CLIENTS ?? 10);
  const started = Date.now();
  let created = 0;
  let matched = 0;
  const result = await load(clients, async (n) => {
    // Every tenth POST re-sends an earlier fill, as a pharmacy retrying after a timeout does.
    const fill = n % 10 === 9 ? n - 5 : n;
    const dispense = {
      resourceType: 'MedicationDispense',
      identifier: [{ system: 'urn:bench:pharmacy-fill', value: `${run}-${fill}` }],
      status: 'completed',
      subject: { reference: `Patient/bench-${fill % 500}` },
      medicationCodeableConcept: { coding: [{ system: RXNORM, code: '1010606' }] },
      whenHandedOver: '2026-10-01',
      daysSupply: { value: 28, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
    };
    const { status, text } = await post(`${base}/MedicationDispense`, dispense, {
      'if-none-exist': `identifier=urn:bench:pharmacy-fill|${run}-${fill}`,
      prefer: 'return=minimal',
    });
    if (status === 201) created++;
    if (status === 200) matched++;
    return { ok: status === 201 || status === 200, detail: `${status} ${text.slice(0, 300)}` };
  });
  const elapsed = (Date.now() - started) / 1000;
  return [
    {
      scenario: `dispense POST with If-None-Exist, ${clients} clients`,
      'req/s': Math.round((result.latencies.length - result.failures) / elapsed),
      'p50 ms': Math.round(percentile(result.latencies, 50)),
      'p95 ms': Math.round(percentile(result.latencies, 95)),
      created,
      'matched (re-sends)': matched,
      failures: result.failures,
    },
  ];
}
