/**
 * ViewDefinition constants (`constant: [{name, valueX}]`) become FHIRPath literals in the expressions
 * that name them (`%name`), so a date constant compares as a date and an integer as an integer, as if
 * the author had written the literal; `%rowIndex` and FHIRPath's own variables are left to the engine.
 */
export type ConstantLiterals = ReadonlyMap<string, string>;

/** Variables the evaluation itself provides. */
const BUILT_IN = new Set(['rowIndex', 'resource', 'rootResource', 'context', 'ucum', 'sct', 'loinc']);

const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);
const NUMBER_TYPES = new Set(['integer', 'integer64', 'decimal', 'positiveInt', 'unsignedInt']);

function quoted(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}'`;
}

/** The FHIRPath literal of a constant's value[x], or an error text. */
export function literalOf(constant: Record<string, unknown>): string | { error: string } {
  const keys = Object.keys(constant).filter((k) => k.startsWith('value'));
  if (keys.length !== 1) return { error: `constant ${String(constant.name)} needs exactly one value[x]` };
  const type = keys[0].charAt(5).toLowerCase() + keys[0].slice(6);
  const value = constant[keys[0]];
  if (type === 'boolean') {
    return typeof value === 'boolean' ? String(value) : { error: `${keys[0]} must be true or false` };
  }
  if (NUMBER_TYPES.has(type)) {
    return typeof value === 'number' && Number.isFinite(value)
      ? String(value)
      : { error: `${keys[0]} must be a number` };
  }
  if (typeof value !== 'string') return { error: `${keys[0]} must be a string` };
  if (DATE_TYPES.has(type)) {
    return /^\d{4}(-\d{2}(-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?)?)?$/.test(value)
      ? `@${value}`
      : { error: `${keys[0]} is not a FHIR ${type}` };
  }
  if (type === 'time')
    return /^\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?$/.test(value) ? `@T${value}` : { error: `${keys[0]} is not a FHIR time` };
  return quoted(value);
}

/**
 * The expression with each `%name` of a constant replaced by its literal (outside string literals and
 * delimited identifiers); throws with the name of a variable that is neither a constant nor built in.
 */
export function substituteConstants(expression: string, constants: ConstantLiterals): string {
  let out = '';
  let i = 0;
  while (i < expression.length) {
    const c = expression[i];
    if (c === "'" || c === '`') {
      let j = i + 1;
      while (j < expression.length && expression[j] !== c) j += expression[j] === '\\' ? 2 : 1;
      out += expression.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === '%') {
      const match = /^%([A-Za-z_][A-Za-z0-9_]*)/.exec(expression.slice(i));
      if (match) {
        const literal = constants.get(match[1]);
        if (literal !== undefined) out += `(${literal})`;
        else if (BUILT_IN.has(match[1])) out += match[0];
        else throw new Error(`%${match[1]} is not a constant of this view`);
        i += match[0].length;
        continue;
      }
    }
    out += c;
    i++;
  }
  return out;
}
