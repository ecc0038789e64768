import { indexedTypes, searchIndexes } from '../../../src/search/indexes';

describe('search indexes of the medication set', () => {
  it('bounds both halves of a date condition: each indexed lower bound has an upper-bound index', () => {
    for (const type of indexedTypes()) {
      const paths = searchIndexes(type).flatMap((index) => Object.keys(index.key));
      for (const lower of paths.filter((p) => p.startsWith('sp.') && p.endsWith('.lo'))) {
        expect(paths).toContain(`${lower.slice(0, -3)}.hi`);
      }
    }
    expect(searchIndexes('Observation')).toContainEqual({ key: { 'sp.date.hi': 1 }, name: 'sp_date_hi' });
  });

  it('indexes the default string search of names, and index names are unique per type', () => {
    for (const type of ['Patient', 'Practitioner', 'Organization']) {
      expect(searchIndexes(type)).toContainEqual({ key: { 'sp.name.n': 1 }, name: 'sp_name' });
    }
    for (const type of indexedTypes()) {
      const names = searchIndexes(type).map((index) => index.name);
      expect(new Set(names).size).toBe(names.length);
    }
  });
});
