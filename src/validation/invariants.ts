import type { ElementDefinitionConstraint } from '@medplum/fhirtypes';
import { compile } from 'fhirpath';
import * as r4Model from 'fhirpath/fhir-context/r4';
import { isObject, isUpper, type JsonObject } from './json';

/**
 * FHIRPath invariants (ElementDefinition.constraint), compiled once with fhirpath.js.
 *
 * Evaluating FHIRPath costs 3–20 µs per expression, and a typical resource meets dozens of
 * invariants, so two shortcuts keep validation fast without changing verdicts:
 * - `ele-1` and `ext-1` are checked natively (ele-1 by the structure walker's empty-object check,
 *   ext-1 here), but only when the expression text is exactly the R4 one, so a profile that
 *   redefines a key still gets its own expression evaluated.
 * - The "absent inputs" guard: most invariants only talk about a few child elements ("duration.empty()
 *   or durationUnit.exists()"). When an expression refers to nothing outside its own identifiers and
 *   none of those identifiers is present on the node, its result is the same as on an empty node,
 *   which we compute once and remember.
 */
export interface CompiledConstraint {
  readonly key: string;
  readonly severity: 'error' | 'warning';
  readonly human: string;
  readonly expression: string;
  readonly source?: string;
  /** true when satisfied; undefined when the expression cannot be evaluated (reported by the caller, never as a failure). */
  evaluate(node: unknown, env: ConstraintEnv): boolean | undefined;
}

export interface ConstraintEnv {
  /** The resource that contains the node (%resource). */
  readonly resource: unknown;
  /** The outermost resource (%rootResource), e.g. the Bundle or the container of a contained resource. */
  readonly rootResource: unknown;
}

const R4_ELE_1 = 'hasValue() or (children().count() > id.count())';
const R4_EXT_1 = 'extension.exists() != value.exists()';

/** Constraint keys that need no FHIRPath: ele-1 is exactly the walker's "no empty elements" rule. */
export function isNativeEle1(c: ElementDefinitionConstraint): boolean {
  return c.key === 'ele-1' && c.expression === R4_ELE_1;
}

/** Functions and variables that look beyond the node's own named children: the guard does not apply. */
const NON_LOCAL = /%|\$this|descendants\(|children\(|repeat\(|hasValue\(|resolve\(|htmlChecks\(|ofType\(|\bis\b|\bas\b|conformsTo\(|memberOf\(|extension\(/;

const silentTrace = { traceFn: (): void => undefined };

export function compileConstraint(c: ElementDefinitionConstraint, basePath: string): CompiledConstraint | undefined {
  if (!c.expression || isNativeEle1(c)) return undefined;
  const severity = c.severity === 'warning' ? 'warning' : 'error';
  const meta = { key: c.key, severity, human: c.human, expression: c.expression, source: c.source } as const;
  if (c.key === 'ext-1' && c.expression === R4_EXT_1) {
    return { ...meta, evaluate: (node) => !isObject(node) || hasKey(node, 'extension') !== hasChoice(node, 'value') };
  }
  let fn: (node: unknown, env: ConstraintEnv) => unknown[];
  try {
    const compiled = compile({ base: basePath, expression: c.expression }, r4Model, silentTrace);
    fn = (node, env) => compiled(node, { resource: env.resource, rootResource: env.rootResource }) as unknown[];
  } catch {
    return { ...meta, evaluate: () => undefined };
  }
  const run = (node: unknown, env: ConstraintEnv): boolean | undefined => {
    try {
      return toBoolean(fn(node, env));
    } catch {
      return undefined;
    }
  };
  const identifiers = NON_LOCAL.test(c.expression) ? undefined : referencedIdentifiers(c.expression);
  if (!identifiers) return { ...meta, evaluate: run };
  let onEmpty: boolean | undefined | null = null;
  return {
    ...meta,
    evaluate(node, env) {
      if (isObject(node) && !mentionsAny(node, identifiers)) {
        if (onEmpty === null) onEmpty = run({}, env);
        return onEmpty;
      }
      return run(node, env);
    },
  };
}

/** FHIRPath truthiness for an invariant: an empty result counts as satisfied, as the HL7 validator does. */
function toBoolean(result: unknown[]): boolean {
  if (result.length === 0) return true;
  if (result.length === 1 && typeof result[0] === 'boolean') return result[0];
  return result.every((r) => r !== false);
}

/** Identifiers of the expression that are not function names, string contents or keywords. */
function referencedIdentifiers(expression: string): string[] {
  const withoutStrings = expression.replace(/'(?:[^'\\]|\\.)*'/g, "''");
  const names = new Set<string>();
  const re = /`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)(\s*\()?/g;
  for (let m = re.exec(withoutStrings); m; m = re.exec(withoutStrings)) {
    if (m[1]) names.add(m[1]);
    else if (m[2] && !m[3] && !KEYWORDS.has(m[2])) names.add(m[2]);
  }
  return [...names];
}

const KEYWORDS = new Set(['and', 'or', 'xor', 'implies', 'true', 'false', 'div', 'mod', 'in', 'contains']);

/** Whether the node has a property named like one of the identifiers (value → valueQuantity, _status → status). */
function mentionsAny(node: JsonObject, identifiers: readonly string[]): boolean {
  for (const key of Object.keys(node)) {
    const name = key.charCodeAt(0) === 95 ? key.slice(1) : key;
    for (const id of identifiers) {
      if (name === id || (name.startsWith(id) && isUpper(name.charCodeAt(id.length)))) return true;
    }
  }
  return false;
}

function hasKey(node: JsonObject, key: string): boolean {
  return node[key] !== undefined;
}

function hasChoice(node: JsonObject, prefix: string): boolean {
  for (const key of Object.keys(node)) {
    if (key.startsWith(prefix) && key.length > prefix.length && isUpper(key.charCodeAt(prefix.length))) return true;
  }
  return false;
}
