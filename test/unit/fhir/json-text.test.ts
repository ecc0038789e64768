import fc from 'fast-check';
import { BSON } from 'mongodb';
import { hasRewrittenNumber, parseJsonText, stringifyJson } from '../../../src/fhir/json-text';
import {
  carryNumberTexts,
  collectNumberTexts,
  copyNumberText,
  hasNumberText,
  numberText,
  restoreNumberTexts,
  sameNumberTexts,
} from '../../../src/fhir/number-text';

type Json = Record<string, unknown>;
/** The value without its number texts (jest's toEqual compares symbol properties too). */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe('parseJsonText', () => {
  it('reads what JSON.parse reads, and flags nothing when every number is written as JavaScript writes it', () => {
    const text = '{"a":[1,2.5,-3,0,1e+21,"1.50",{"b":"x\\"1.0\\"","c":true,"d":null}],"e":"10:00:00.000Z"}';
    const value = parseJsonText(text);
    expect(plain(value)).toEqual(plain(JSON.parse(text)));
    expect(hasNumberText(value)).toBe(false);
    expect(hasRewrittenNumber(text)).toBe(false);
  });

  it('keeps the text of numbers JavaScript would write otherwise, and flags the containers above them', () => {
    const text = '{"a":1.50,"b":[1,2.0,{"d":-0,"e":1e2}],"f":{"g":12345678901234567890},"h":{"i":1}}';
    const value = parseJsonText(text) as Json;
    expect(plain(value)).toEqual(plain(JSON.parse(text)));
    expect(numberText(value, 'a')).toBe('1.50');
    expect(numberText(value.b as object, 1)).toBe('2.0');
    expect(collectNumberTexts(value)).toEqual([
      { p: '/a', t: '1.50' },
      { p: '/b/1', t: '2.0' },
      { p: '/b/2/d', t: '-0' },
      { p: '/b/2/e', t: '1e2' },
      { p: '/f/g', t: '12345678901234567890' },
    ]);
    expect(hasNumberText(value.h)).toBe(false); // a subtree without any is not flagged
  });

  it('is not fooled by strings that look like numbers, escaped quotes, or whitespace', () => {
    const text = ' {\n  "a" : "x:1.0,",\n  "b\\\\" : [ "\\"" , 3.10 ] ,\n  "c":"[1.0]"\n}\n';
    const value = parseJsonText(text) as Json;
    expect(plain(value)).toEqual(plain(JSON.parse(text)));
    expect(collectNumberTexts(value)).toEqual([{ p: '/b\\/1', t: '3.10' }]);
  });

  it('keeps "__proto__" as an own property, as JSON.parse does', () => {
    const value = parseJsonText('{"__proto__":{"x":1.0},"y":2}') as Json;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['__proto__', 'y']);
    expect(stringifyJson(value)).toBe('{"__proto__":{"x":1.0},"y":2}');
  });

  it('nesting too deep for its own parser reads as JSON.parse reads it', () => {
    const depth = 100_000;
    const text = `${'['.repeat(depth)}1.50${']'.repeat(depth)}`;
    let value = parseJsonText(text);
    for (let i = 0; i < depth; i++) value = (value as unknown[])[0];
    expect(value).toBe(1.5);
  });

  it('reports bad syntax as JSON.parse does', () => {
    expect(() => parseJsonText('{"a":1.0,')).toThrow(SyntaxError);
    expect(() => parseJsonText('{"a":01}')).toThrow(SyntaxError);
  });

  it('reads any JSON as JSON.parse does and writes it back as written', () => {
    const number = fc.oneof(
      fc.integer().map(String),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? '-0' : String(n))),
      fc.tuple(fc.integer({ min: -999, max: 999 }), fc.stringMatching(/^[0-9]{1,4}$/)).map(([i, f]) => `${i}.${f}`),
      fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: -20, max: 20 })).map(([m, e]) => `${m}e${e}`),
    );
    const json: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        number,
        fc.string().map((s) => JSON.stringify(s)),
        fc.constantFrom('true', 'false', 'null'),
        fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
        fc
          .uniqueArray(fc.tuple(fc.string(), tie('value')), { maxLength: 4, selector: ([k]) => k })
          .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(', ')}}`),
      ),
    })).value;
    fc.assert(
      fc.property(json, (member) => {
        const text = `{"resource": ${member}}`; // a body is an object; a bare number has nowhere to keep its text
        const value = parseJsonText(text);
        expect(plain(value)).toEqual(plain(JSON.parse(text)));
        // Written back, it reads the same, and every number token is one of the input (integer-like keys
        // such as "0" come first in a JavaScript object, so the order may differ).
        const written = stringifyJson(value);
        expect(plain(JSON.parse(written))).toEqual(plain(JSON.parse(text)));
        expect(numbersIn(written).sort()).toEqual(numbersIn(text).sort());
      }),
      { numRuns: 500 },
    );
  });
});

/** The number tokens of a JSON text outside strings, in order. */
function numbersIn(text: string): string[] {
  return text.replace(/"(?:[^"\\]|\\.)*"/g, '""').match(/-?\d[\d.eE+-]*/g) ?? [];
}

describe('stringifyJson', () => {
  it('writes numbers as written, also pretty-printed and in Bundle entries and Parameters', () => {
    const resource = parseJsonText('{"resourceType":"Observation","valueQuantity":{"value":1.50}}');
    expect(stringifyJson(resource)).toBe('{"resourceType":"Observation","valueQuantity":{"value":1.50}}');
    expect(stringifyJson(resource, 2)).toContain('"value": 1.50');
    const bundle = { resourceType: 'Bundle', entry: [{ resource: { resourceType: 'Patient' } }, { resource }] };
    expect(stringifyJson(bundle)).toContain('"value":1.50');
    const parameters = { resourceType: 'Parameters', parameter: [{ name: 'r', resource }] };
    expect(stringifyJson(parameters)).toContain('"value":1.50');
  });

  it('writes the number that is there when a copy carried a text over a replaced value', () => {
    const quantity = parseJsonText('{"value":1.50,"unit":"mg"}') as Json;
    const changed = { ...quantity, value: 2 }; // spread copies the text map too
    expect(stringifyJson({ resourceType: 'X', q: changed, ...{} })).toBe(
      '{"resourceType":"X","q":{"value":2,"unit":"mg"}}',
    );
    const top = { ...changed } as Json;
    expect(stringifyJson(top)).toBe('{"value":2,"unit":"mg"}');
  });

  it('a client string that looks like the placeholder stays a string', () => {
    const resource = parseJsonText('{"a":1.50,"b":"@nt-0000000000000000-0"}');
    expect(stringifyJson(resource)).toBe('{"a":1.50,"b":"@nt-0000000000000000-0"}');
  });
});

describe('number texts beside a stored resource', () => {
  it('are not serialized by BSON, and survive a store/read round trip through collect and restore', () => {
    const resource = parseJsonText(
      '{"resourceType":"Observation","component":[{"valueQuantity":{"value":1.50}},{"valueInteger":3}],"x/y":{"~":2.0}}',
    );
    const stored = BSON.deserialize(BSON.serialize(resource as Json));
    expect(stored).toEqual(plain(resource));
    const nt = collectNumberTexts(resource);
    expect(nt).toEqual([
      { p: '/component/0/valueQuantity/value', t: '1.50' },
      { p: '/x~1y/~0', t: '2.0' },
    ]);
    restoreNumberTexts(stored, nt);
    expect(stringifyJson(stored)).toBe(stringifyJson(resource));
  });

  it('a stored entry that names no such number is ignored', () => {
    const resource = { a: { b: 1.5 }, c: 'x' };
    restoreNumberTexts(resource, [
      { p: '/a/b', t: '2.50' },
      { p: '/c', t: '1.0' },
      { p: '/nowhere/x', t: '1.0' },
      { p: '', t: '1' },
    ]);
    expect(hasNumberText(resource)).toBe(false);
  });

  it('carry over to a patched copy only where the same number is still there', () => {
    const before = parseJsonText('{"a":1.50,"b":{"c":2.0,"d":3.0}}') as Json;
    const after = JSON.parse('{"a":1.5,"b":{"c":7,"d":3}}') as Json;
    carryNumberTexts(before, after);
    expect(stringifyJson(after)).toBe('{"a":1.50,"b":{"c":7,"d":3.0}}');
  });

  it('a rebuilt container can be given its original texts', () => {
    const original = parseJsonText('{"a":[1.0,2]}') as Json;
    const list = [...(original.a as unknown[])];
    copyNumberText(original.a, list);
    const copy = { a: list };
    copyNumberText(original, copy);
    expect(stringifyJson(copy)).toBe('{"a":[1.0,2]}');
  });

  it('precision is part of the content: 1.5 and 1.50 differ, 1.50 and 1.50 do not', () => {
    const a = parseJsonText('{"v":1.50}');
    expect(sameNumberTexts(a, parseJsonText('{"v":1.50}'))).toBe(true);
    expect(sameNumberTexts(a, parseJsonText('{"v":1.5}'))).toBe(false);
    expect(sameNumberTexts({ v: 1 }, { v: 1 })).toBe(true);
  });
});
