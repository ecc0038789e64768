import { loadConfig } from '../../src/config';

describe('loadConfig', () => {
  it('reads limits from the environment', () => {
    const config = loadConfig({ CONDITIONAL_DELETE_MAX: '5', MAX_BUNDLE_ENTRIES: '200', MAX_PAGE_SIZE: '50' });
    expect(config.conditionalDeleteMax).toBe(5);
    expect(config.maxBundleEntries).toBe(200);
    expect(config.maxPageSize).toBe(50);
    expect(loadConfig({}).conditionalDeleteMax).toBe(1);
  });

  it.each(['CONDITIONAL_DELETE_MAX', 'MAX_BUNDLE_ENTRIES', 'MAX_PAGE_SIZE', 'DEFAULT_PAGE_SIZE', 'MAX_BODY_BYTES'])(
    'refuses %s=0, a limit that would switch the feature off',
    (name) => {
      expect(() => loadConfig({ [name]: '0' })).toThrow(new RegExp(`${name} must be an integer of at least 1`));
    },
  );

  it('refuses values that are not integers', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ CONDITIONAL_DELETE_MAX: '1.5' })).toThrow(/CONDITIONAL_DELETE_MAX/);
  });
});
