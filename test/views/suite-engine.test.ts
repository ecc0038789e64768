import { compileView } from '../../src/views/compile';
import { viewRows } from '../../src/views/rows';
import { comparableRows, isShareable, loadSuite, type SuiteCase, type SuiteFile } from '../support/sql-on-fhir-suite';

/** Every shareable case of the official suite, run against the view engine directly. */
const suite = loadSuite();

function run(file: SuiteFile, c: SuiteCase) {
  const plan = compileView(c.view);
  return { plan, rows: file.resources.flatMap((r) => viewRows(plan, r)) };
}

describe.each(suite.map((f) => [f.file, f] as const))('%s', (_name, file) => {
  const cases = file.cases.filter(isShareable);
  if (!cases.length) {
    it('has no shareable case', () => expect(file.cases.every((c) => !isShareable(c))).toBe(true));
    return;
  }
  it.each(cases.map((c) => [c.title, c] as const))('%s', (_title, c) => {
    if (c.expectError) {
      expect(() => run(file, c)).toThrow();
      return;
    }
    const { plan, rows } = run(file, c);
    if (c.expectColumns) expect(plan.names).toEqual(c.expectColumns);
    if (c.expectCount !== undefined) expect(rows).toHaveLength(c.expectCount);
    if (c.expect) expect(comparableRows(rows)).toEqual(comparableRows(c.expect));
  });
});
