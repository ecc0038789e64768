import { formatRows } from '../../src/views/format';
import type { Row } from '../../src/views/rows';

async function text(batches: Row[][], format: 'json' | 'ndjson' | 'csv', header = true): Promise<string> {
  async function* source() {
    yield* batches;
  }
  let out = '';
  for await (const chunk of formatRows(source(), format, ['a', 'b'], header)) out += chunk;
  return out;
}

const BATCHES: Row[][] = [
  [{ a: 'x, "y"', b: 1 }],
  [],
  [
    { a: 'two\nlines', b: null },
    { a: null, b: ['p', 'q'] },
  ],
];

describe('view output formats', () => {
  it('csv quotes separators, quotes and line breaks, leaves nulls empty and writes collections as JSON', async () => {
    expect(await text(BATCHES, 'csv')).toBe('a,b\r\n"x, ""y""",1\r\n"two\nlines",\r\n,"[""p"",""q""]"\r\n');
    expect(await text(BATCHES, 'csv', false)).toBe('"x, ""y""",1\r\n"two\nlines",\r\n,"[""p"",""q""]"\r\n');
  });

  it('json is one array across batches, empty batches included', async () => {
    expect(JSON.parse(await text(BATCHES, 'json'))).toEqual(BATCHES.flat());
    expect(await text([], 'json')).toBe('[]');
  });

  it('ndjson is one row a line', async () => {
    const lines = (await text(BATCHES, 'ndjson')).trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as Row)).toEqual(BATCHES.flat());
  });
});
