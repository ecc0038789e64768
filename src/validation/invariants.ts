import type { ElementDefinitionConstraint } from '@medplum/fhirtypes';
import { compile } from 'fhirpath';
import * as r4Model from 'fhirpath/fhir-context/r4';
import { DELEGATE, compileFast } from './fast-fhirpath';
import { isObject, isUpper, type JsonObject } from './json';

/**
 * FHIRPath invariants (ElementDefinition.constraint), compiled once.
 *
 * Evaluating with fhirpath.js costs 3–20 µs per expression and a typical resource meets dozens of
 * invariants, so each constraint first tries the small JSON evaluator of fast-fhirpath.ts, which
 * handles the simple subset most R4 invariants use and hands everything else back to fhirpath.js
 * (compiled with the R4 model at construction). `ele-1` and `ext-1` are checked natively, but only
 * when their expression is exactly the R4 one, so a profile that redefines a key gets its own
 * expression evaluated.
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
const R4_DOM_3 =
  "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | %resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()";

/** Constraint keys that need no FHIRPath: ele-1 is exactly the walker's "no empty elements" rule. */
export function isNativeEle1(c: ElementDefinitionConstraint): boolean {
  return c.key === 'ele-1' && c.expression === R4_ELE_1;
}

const silentTrace = { traceFn: (): void => undefined };

/**
 * Constraints that fhirpath.js could not evaluate (it threw), by key, with a count. Such a constraint
 * is treated as satisfied (we never report what we could not check); this makes that visible, e.g.
 * for a start-up log or a metrics endpoint.
 */
export const unevaluableConstraints = new Map<string, number>();

export function compileConstraint(c: ElementDefinitionConstraint, basePath: string): CompiledConstraint | undefined {
  if (!c.expression || isNativeEle1(c)) return undefined;
  const severity = c.severity === 'warning' ? 'warning' : 'error';
  const meta = { key: c.key, severity, human: c.human, expression: c.expression, source: c.source } as const;
  if (c.key === 'ext-1' && c.expression === R4_EXT_1) {
    return {
      ...meta,
      evaluate: (node) => !isObject(node) || (node.extension !== undefined) !== hasChoice(node, 'value'),
    };
  }
  if (c.key === 'dom-3' && c.expression === R4_DOM_3) {
    // fhirpath.js (rightly, under current FHIRPath) rejects R4's `descendants().as(canonical)` on
    // collections, so the R4 text cannot be evaluated as written; this implements its meaning.
    return { ...meta, evaluate: containedAreReferenced };
  }
  let slow: ((node: unknown, env: ConstraintEnv) => unknown[]) | undefined;
  try {
    const compiled = compile({ base: basePath, expression: c.expression }, r4Model, silentTrace);
    slow = (node, env) => compiled(node, { resource: env.resource, rootResource: env.rootResource }) as unknown[];
  } catch {
    slow = undefined; // fhirpath.js cannot compile it: the constraint is reported as not evaluable
  }
  const fast = compileFast(c.expression, basePath);
  const runSlow = (node: unknown, env: ConstraintEnv): boolean | undefined => {
    if (!slow) return undefined;
    try {
      return toBoolean(slow(node, env));
    } catch {
      unevaluableConstraints.set(c.key, (unevaluableConstraints.get(c.key) ?? 0) + 1);
      return undefined;
    }
  };
  if (!fast) return { ...meta, evaluate: runSlow };
  return {
    ...meta,
    evaluate(node, env) {
      try {
        return fast(node);
      } catch (e) {
        if (e !== DELEGATE) throw e;
        return runSlow(node, env);
      }
    },
  };
}

/** FHIRPath truthiness for an invariant: an empty result counts as satisfied, as the HL7 validator does. */
function toBoolean(result: unknown[]): boolean {
  if (result.length === 0) return true;
  if (result.length === 1 && typeof result[0] === 'boolean') return result[0];
  return result.every((r) => r !== false);
}

/** dom-3: every contained resource is referenced ('#id') from the resource, or refers to its container ('#'). */
function containedAreReferenced(node: unknown): boolean {
  if (!isObject(node) || !Array.isArray(node.contained)) return true;
  const localRefs = new Set<string>();
  collectLocalRefs(node, localRefs);
  return node.contained.every((c) => {
    if (!isObject(c)) return true;
    if (typeof c.id === 'string' && localRefs.has(`#${c.id}`)) return true;
    const own = new Set<string>();
    collectLocalRefs(c, own);
    return own.has('#');
  });
}

/** Strings starting with '#' anywhere below value: local references and canonical/uri values. */
function collectLocalRefs(value: unknown, out: Set<string>): void {
  if (typeof value === 'string') {
    if (value.charCodeAt(0) === 35) out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectLocalRefs(v, out);
  } else if (isObject(value)) {
    for (const k of Object.keys(value)) if (k !== 'div') collectLocalRefs(value[k], out);
  }
}

function hasChoice(node: JsonObject, prefix: string): boolean {
  for (const key of Object.keys(node)) {
    if (key.startsWith(prefix) && key.length > prefix.length && isUpper(key.charCodeAt(prefix.length))) return true;
  }
  return false;
}
