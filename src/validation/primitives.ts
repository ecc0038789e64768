import type { StructureDefinition } from '@medplum/fhirtypes';

/**
 * The R4 primitive types as checks: which JSON kind carries them and the regex the spec gives for
 * their lexical form. The regexes come from the primitive StructureDefinitions themselves (extension
 * http://hl7.org/fhir/StructureDefinition/regex on `<type>.value`), so nothing here is hand-copied.
 */
export interface PrimitiveRule {
  readonly type: string;
  readonly json: 'string' | 'number' | 'boolean';
  readonly regex?: RegExp;
  readonly maxLength?: number;
}

const REGEX_EXT = 'http://hl7.org/fhir/StructureDefinition/regex';
const NUMBER_TYPES = new Set(['integer', 'positiveInt', 'unsignedInt', 'decimal']);
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

export function buildPrimitiveRules(typeDefinitions: Iterable<StructureDefinition>): Map<string, PrimitiveRule> {
  const rules = new Map<string, PrimitiveRule>();
  for (const sd of typeDefinitions) {
    if (sd.kind !== 'primitive-type' || !sd.snapshot?.element) continue;
    const valueElement = sd.snapshot.element.find((e) => e.path === `${sd.type}.value`);
    const source = valueElement?.type?.[0]?.extension?.find((x) => x.url === REGEX_EXT)?.valueString;
    const json = sd.type === 'boolean' ? 'boolean' : NUMBER_TYPES.has(sd.type) ? 'number' : 'string';
    rules.set(sd.type, {
      type: sd.type,
      json,
      // The spec's regexes are whole-value patterns; anchor them explicitly.
      regex: source && json === 'string' ? new RegExp(`^(?:${source})$`) : undefined,
      maxLength: valueElement?.maxLength,
    });
  }
  return rules;
}

/** A value as quoted in a message: cut short, since a string may be a megabyte long. */
export function quoted(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}...` : text;
}

/** A message describing why value is not a valid instance of the primitive, or undefined when it is. */
export function primitiveProblem(rule: PrimitiveRule, value: unknown): string | undefined {
  const kind = typeof value;
  if (kind !== rule.json) {
    return `Value must be a JSON ${rule.json} for FHIR type '${rule.type}', found ${value === null ? 'null' : Array.isArray(value) ? 'array' : kind}`;
  }
  if (rule.json === 'number') return numberProblem(rule.type, value as number);
  if (rule.json !== 'string') return undefined;
  const text = value as string;
  if (text.length === 0) return `Value of type '${rule.type}' must not be an empty string`;
  if (rule.maxLength !== undefined && text.length > rule.maxLength) {
    return `Value of type '${rule.type}' is longer than ${rule.maxLength} characters`;
  }
  if (rule.type === 'xhtml') {
    return /^\s*<div[\s>]/.test(text) ? undefined : "Narrative div must be XHTML starting with '<div'";
  }
  if (rule.regex && !rule.regex.test(text)) return `'${quoted(text)}' is not a valid ${rule.type}`;
  if (DATE_TYPES.has(rule.type) && !isRealDate(text))
    return `'${quoted(text)}' is not a valid ${rule.type} (no such day)`;
  return undefined;
}

const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);

/** The regexes allow 2026-02-31; a real calendar does not. */
function isRealDate(text: string): boolean {
  if (text.length < 10) return true; // year or year-month only
  const year = Number(text.slice(0, 4));
  const month = Number(text.slice(5, 7));
  const day = Number(text.slice(8, 10));
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function numberProblem(type: string, n: number): string | undefined {
  if (!Number.isFinite(n)) return `'${n}' is not a valid ${type}`;
  if (type === 'decimal') return undefined;
  if (!Number.isInteger(n) || n < INT32_MIN || n > INT32_MAX) return `'${n}' is not a valid ${type} (32-bit integer)`;
  if (type === 'positiveInt' && n < 1) return `'${n}' is not a valid positiveInt (must be >= 1)`;
  if (type === 'unsignedInt' && n < 0) return `'${n}' is not a valid unsignedInt (must be >= 0)`;
  return undefined;
}
