import type { Resource } from '@medplum/fhirtypes';
import { extractSearchIndex, SearchParameterRegistry } from '../../../src/search';
import { MAX_DATE, MIN_DATE } from '../../../src/search/elements';
import { encodeCode } from '../../../src/search/keys';

const registry = new SearchParameterRegistry();
const index = (resource: Record<string, unknown>) => extractSearchIndex(resource as unknown as Resource, registry);

describe('extractSearchIndex', () => {
  it('stores a single value unwrapped and marked, several as an array', () => {
    const sp = index({
      resourceType: 'Patient',
      id: 'p',
      name: [{ family: 'Müller', given: ['Jörg', 'Karl'] }],
    });
    expect(sp.family).toEqual({ n: 'muller', e: 'Müller', one: true });
    expect(sp.given).toEqual([
      { n: 'jorg', e: 'Jörg' },
      { n: 'karl', e: 'Karl' },
    ]);
  });

  it('normalises tokens into system|code pairs with text, and identifier types', () => {
    const sp = index({
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }], text: 'Glucose Sérum' },
      identifier: [{ system: 'urn:x', value: 'v', type: { coding: [{ system: 'urn:t', code: 'MR' }] } }],
    });
    expect(sp.code).toEqual({
      s: 'http://loinc.org',
      c: '2345-7',
      sc: 'http://loinc.org|2345-7',
      x: 'glucose serum',
      one: true,
    });
    expect(sp.status).toEqual({ c: 'final', sc: '|final', one: true });
    expect(sp.identifier).toEqual({ s: 'urn:x', c: 'v', sc: 'urn:x|v', ot: 'urn:t|MR|v', one: true });
  });

  it('stores dates as [lo, hi) ranges of their precision, open Period ends as the extremes, those over a day marked wide', () => {
    const sp = index({
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: { text: 'x' },
      effectivePeriod: { start: '2024-03' },
    });
    expect(sp.date).toEqual({ lo: new Date('2024-03-01T00:00:00Z'), hi: MAX_DATE, one: true, span: 'wide' });
    const p = index({ resourceType: 'Patient', id: 'p', birthDate: '1980' });
    expect(p.birthdate).toEqual({
      lo: new Date('1980-01-01T00:00:00Z'),
      hi: new Date('1981-01-01T00:00:00Z'),
      one: true,
      span: 'wide',
    });
    const q = index({
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: {},
      effectivePeriod: { end: '2024-03-05T10:00:00+01:00' },
    });
    expect(q.date).toEqual({ lo: MIN_DATE, hi: new Date('2024-03-05T09:00:01Z'), one: true, span: 'wide' });
    // A day or less carries no marker: searches bound it by its start (compile/date-ranges.ts).
    const day = index({ resourceType: 'Patient', id: 'p', birthDate: '1980-02-29' });
    expect(day.birthdate).toEqual({
      lo: new Date('1980-02-29T00:00:00Z'),
      hi: new Date('1980-03-01T00:00:00Z'),
      one: true,
    });
  });

  it('references become Type/id with the id, absolute URLs stay URLs, identifiers system|value', () => {
    const sp = index({
      resourceType: 'MedicationRequest',
      id: 'm',
      status: 'active',
      intent: 'order',
      subject: { reference: 'Patient/p1/_history/3' },
      medicationReference: { reference: 'http://other/fhir/Medication/m1' },
      requester: { identifier: { system: 'urn:npi', value: '9' } },
    });
    expect(sp.subject).toEqual({ r: 'Patient/p1', i: 'p1', one: true });
    expect(sp.patient).toEqual({ r: 'Patient/p1', i: 'p1', one: true });
    expect(sp.medication).toEqual({ u: 'http://other/fhir/Medication/m1', one: true });
    expect(sp.requester).toEqual({ ident: 'urn:npi|9', one: true });
  });

  it('keeps only Patient references for parameters whose expression says resolve() is Patient', () => {
    const sp = index({
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: {},
      subject: { reference: 'Group/g' },
    });
    expect(sp.subject).toBeDefined();
    expect(sp.patient).toBeUndefined();
  });

  it('converts UCUM quantities to base units and builds composite combinations', () => {
    const sp = index({
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: 'a' }] },
      valueQuantity: { value: 1, unit: 'g/L', system: 'http://unitsofmeasure.org', code: 'g/L' },
    });
    expect(sp['value-quantity']).toMatchObject({ v: 1, cv: 1000, cc: 'g.m-3' });
    expect(sp['code-value-quantity']).toMatchObject({ k0sc: 'http://loinc.org|a', k1cv: 1000 });
  });

  it('writes one sort scalar per parameter (the smallest value)', () => {
    const sp = index({ resourceType: 'Patient', id: 'p', name: [{ family: 'B', given: ['Zed', 'Al'] }] });
    expect((sp._sort as Record<string, unknown>).given).toBe('al');
  });

  it('leaves out parameters without values and never nests arrays', () => {
    expect(Object.keys(index({ resourceType: 'Medication', id: 'm' }))).toEqual([]);
    const mr = index({
      resourceType: 'CarePlan',
      id: 'c',
      status: 'active',
      intent: 'plan',
      subject: { reference: 'Patient/p' },
      activity: [
        {
          detail: {
            status: 'scheduled',
            scheduledTiming: {
              event: ['2024-01-01', '2024-02-01'],
              repeat: { boundsPeriod: { start: '2024-01-01', end: '2024-03-01' } },
            },
          },
        },
      ],
    });
    const values = mr['activity-date'] as unknown[];
    expect(values).toHaveLength(3);
    for (const v of values) expect(Array.isArray(v)).toBe(false);
  });

  it('encodes parameter codes that are not safe as MongoDB keys', () => {
    expect(encodeCode('a.b')).toBe('a%2Eb');
    expect(encodeCode('$x')).toBe('%24x');
    expect(encodeCode('code-value-quantity')).toBe('code-value-quantity');
  });
});
