import { readFileSync } from 'node:fs';
import { corpus, VERDICTS_FILE, verdictOf, type Verdict } from '../../fixtures/validation/corpus';
import { validator } from './helpers';

// One-defect variants of realistic resources (test/fixtures/validation/corpus.ts): each must get the
// verdict its defect calls for, and every variant's whole verdict must stay the one the table pins.

const variants = corpus();
const pinned = JSON.parse(readFileSync(VERDICTS_FILE, 'utf8')) as Record<string, Verdict>;

describe('the corpus of one-defect variants', () => {
  it('has a few hundred variants, valid and invalid, and the table pins exactly them', () => {
    expect(variants.length).toBeGreaterThan(300);
    expect(variants.filter((v) => v.defect === undefined).length).toBeGreaterThan(30);
    expect(variants.map((v) => v.id).sort()).toEqual(Object.keys(pinned).sort());
  });

  it.each(variants.map((v) => [v.id, v] as const))('%s', (_id, variant) => {
    const verdict = verdictOf(validator(), variant);
    if (variant.defect === undefined) expect(verdict).toEqual([]);
    else expect(verdict).toContainEqual([variant.defect.code, variant.defect.expression]);
    expect(verdict).toEqual(pinned[variant.id]);
  });
});
