import { isObject, type JsonObject } from './json';
import { quoted } from './primitives';
import type { CodeSet } from './terminology';

const STRING_CODED = new Set(['code', 'string', 'uri']);
const OBJECT_CODED = new Set(['Coding', 'CodeableConcept', 'Quantity']);

function byRule(set: CodeSet, system: string | undefined, code: string): boolean {
  return set.rules !== undefined && set.rules.some((rule) => rule(system, code));
}

/** Whether a value of this type can be checked against a value set at all. */
export function isBindable(type: string): boolean {
  return STRING_CODED.has(type) || OBJECT_CODED.has(type);
}

/**
 * Why a coded value is not in the value set, or undefined when it is (or when it carries no code we
 * could check: a CodeableConcept with text only is left alone, as we cannot judge it).
 * A CodeableConcept conforms when any of its codings is in the set, as the spec defines.
 */
export function bindingProblem(set: CodeSet, type: string, value: unknown): string | undefined {
  if (STRING_CODED.has(type)) {
    if (typeof value !== 'string' || set.codes.has(value) || byRule(set, undefined, value)) return undefined;
    return `The value '${quoted(value)}' is not in the value set ${set.url}`;
  }
  if (!isObject(value) || !OBJECT_CODED.has(type)) return undefined;
  const codings = type === 'CodeableConcept' ? (Array.isArray(value.coding) ? value.coding : []) : [value];
  const coded = codings.filter((c): c is JsonObject => isObject(c) && typeof c.code === 'string');
  if (coded.length === 0) return undefined;
  const inSet = (c: JsonObject): boolean => {
    const system = typeof c.system === 'string' ? c.system : undefined;
    const code = String(c.code);
    const listed = system !== undefined ? set.systemCodes.has(`${system}|${code}`) : set.codes.has(code);
    return listed || byRule(set, system, code);
  };
  if (coded.some(inSet)) return undefined;
  const shown = quoted(
    coded.map((c) => `${typeof c.system === 'string' ? c.system : ''}#${String(c.code)}`).join(', '),
  );
  return `None of the codes provided (${shown}) are in the value set ${set.url}`;
}
