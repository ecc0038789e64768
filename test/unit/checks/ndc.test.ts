import { ndcProductKey } from '../../../src/checks/ndc';

/**
 * An NDC reaches us as a 10-digit code in one of three hyphenated layouts, as the 11-digit 5-4-2 code
 * of claims (with or without hyphens), or as a two-segment product code. They all name one product.
 */
describe('ndcProductKey', () => {
  test.each([
    // 4-4-2: the labeler is short (Januvia 100 mg, Merck).
    ['0006-0277-28', '000060277'],
    ['00006-0277-28', '000060277'],
    ['00006027728', '000060277'],
    // 5-3-2: the product is short (Lipitor, Viatris).
    ['58151-155-77', '581510155'],
    ['58151-0155-77', '581510155'],
    // 5-4-1: the package is short (losartan repackaged by NuCare).
    ['68071-1517-9', '680711517'],
    ['68071-1517-09', '680711517'],
    // Product NDCs, as the classes list them.
    ['0006-0277', '000060277'],
    ['58151-155', '581510155'],
    ['68071-1517', '680711517'],
    [' 0078-0696-20 ', '000780696'],
  ])('%s is product %s', (code, product) => {
    expect(ndcProductKey(code)).toBe(product);
  });

  test.each([
    // Ten digits without hyphens: 4-4-2, 5-3-2 and 5-4-1 read differently, so no product can be told.
    ['0006027728'],
    // Segments too short or too long, two short segments, letters, one segment, four segments.
    ['006-0277-28'],
    ['000006-0277-28'],
    ['0006-277-28'],
    ['0006-0277-2'],
    ['0006-O277-28'],
    ['0006'],
    ['0006-0277-28-1'],
    [''],
    ['617312'],
  ])('%p names no product', (code) => {
    expect(ndcProductKey(code)).toBeUndefined();
  });
});
