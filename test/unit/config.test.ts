import { checkDeployment, loadConfig } from '../../src/config';

describe('loadConfig', () => {
  it('reads limits from the environment', () => {
    const config = loadConfig({ CONDITIONAL_DELETE_MAX: '5', MAX_BUNDLE_ENTRIES: '200', MAX_PAGE_SIZE: '50' });
    expect(config.conditionalDeleteMax).toBe(5);
    expect(config.maxBundleEntries).toBe(200);
    expect(config.maxPageSize).toBe(50);
    expect(loadConfig({}).conditionalDeleteMax).toBe(1);
  });

  it.each([
    'CONDITIONAL_DELETE_MAX',
    'MAX_BUNDLE_ENTRIES',
    'MAX_PAGE_SIZE',
    'DEFAULT_PAGE_SIZE',
    'MAX_BODY_BYTES',
    'MAX_ARRAY_LENGTH',
    'MAX_INDEX_VALUES',
    'MAX_SEARCH_PARAMETERS',
    'MAX_PATCH_OPERATIONS',
    'MAX_REQUESTS_IN_FLIGHT',
    'MAX_REQUESTS_QUEUED',
    'MAX_QUEUE_WAIT_MS',
  ])('refuses %s=0, a limit that would switch the feature off', (name) => {
    expect(() => loadConfig({ [name]: '0' })).toThrow(new RegExp(`${name} must be an integer of at least 1`));
  });

  it('reads the request limits, with their documented defaults', () => {
    const defaults = loadConfig({});
    expect([defaults.maxJsonDepth, defaults.maxArrayLength, defaults.maxIndexValues, defaults.maxSearchChains]).toEqual(
      [64, 5000, 5000, 10],
    );
    expect(loadConfig({ MAX_SEARCH_INCLUDES: '3', MAX_STRING_LENGTH: '100' })).toMatchObject({
      maxSearchIncludes: 3,
      maxStringLength: 100,
    });
    // A depth under 8 would refuse ordinary resources (an extension inside a name nests 5 deep).
    expect(() => loadConfig({ MAX_JSON_DEPTH: '7' })).toThrow(/MAX_JSON_DEPTH must be an integer of at least 8/);
  });

  it('refuses values that are not integers', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ CONDITIONAL_DELETE_MAX: '1.5' })).toThrow(/CONDITIONAL_DELETE_MAX/);
  });

  it('reads the standing findings settings, refusing malformed ones', () => {
    expect(loadConfig({}).findings).toMatchObject({
      enabled: true,
      workers: 2,
      sweepTime: '02:00',
      timeZone: 'UTC',
      clock: 'system',
    });
    expect(loadConfig({ FINDINGS: 'off', FINDINGS_TIME_ZONE: 'Europe/Paris' }).findings).toMatchObject({
      enabled: false,
      timeZone: 'Europe/Paris',
    });
    expect(() => loadConfig({ FINDINGS_SWEEP_TIME: '25:00' })).toThrow(/FINDINGS_SWEEP_TIME/);
    expect(() => loadConfig({ FINDINGS_TIME_ZONE: 'Mars/Olympus' })).toThrow(/FINDINGS_TIME_ZONE/);
    expect(() => loadConfig({ FINDINGS_CLOCK: 'fast' })).toThrow(/FINDINGS_CLOCK/);
  });

  it('refuses the test clock in production', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      FINDINGS_CLOCK: 'test',
      PUBLIC_BASE_URL: 'https://fhir.example.org/fhir',
      AUTH_HS256_SECRET: 'a-secret-of-at-least-thirty-two-characters',
    });
    expect(() => checkDeployment(config)).toThrow(/FINDINGS_CLOCK=test/);
  });
});
