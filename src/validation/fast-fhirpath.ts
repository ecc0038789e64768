import { parse } from 'fhirpath';
import * as r4Model from 'fhirpath/fhir-context/r4';
import { isObject, isUpper } from './json';

/**
 * A tiny evaluator for the simple subset of FHIRPath that most R4 invariants are written in
 * ("duration.empty() or durationUnit.exists()", "period.exists() implies period >= 0"), over plain
 * JSON, using the AST of fhirpath.js's own parser. It exists for speed: fhirpath.js costs 5–20 µs
 * per invariant, this costs well under 1 µs, and a resource meets dozens of invariants.
 *
 * It never guesses. Whatever it does not fully understand (choice-typed members, `_field` primitive
 * extensions, non-numeric ordering, most functions, environment variables other than %ucum) throws
 * DELEGATE, and the caller evaluates the expression with fhirpath.js instead. Functions it does not
 * know are still handled when their input is empty and the function maps empty to empty (where,
 * select, trace...), which is what makes "contained.where(...).empty()" cheap on resources without
 * contained resources. The equivalence with fhirpath.js is property-tested
 * (test/unit/validation/fast-fhirpath.test.ts).
 *
 * Member names are resolved with the R4 model of fhirpath.js where the path is known statically
 * (`value` on Extension means valueString, valueCode...), exactly as fhirpath.js does.
 */
export const DELEGATE = Symbol('delegate to fhirpath.js');

type Collection = readonly unknown[];
type Evaluator = (focus: Collection) => Collection;
/** A compiled sub-expression and, when known statically, the FHIR path/type of what it returns. */
interface Compiled {
  readonly fn: Evaluator;
  readonly path?: string;
}

const choiceTypePaths: Record<string, string[] | undefined> = r4Model.choiceTypePaths;
const path2Type: Record<string, string | undefined> = r4Model.path2Type;
/** Names that are a choice element somewhere: with no static path, a literal key of this name is suspect. */
const CHOICE_NAMES = new Set(Object.keys(choiceTypePaths).map((p) => p.slice(p.lastIndexOf('.') + 1)));

interface AstNode {
  type: string;
  text?: string;
  children?: AstNode[];
}

const EMPTY: Collection = [];
const TRUE: Collection = [true];
const FALSE: Collection = [false];
const UCUM = 'http://unitsofmeasure.org';

/** Functions that return an empty collection for an empty input. */
const EMPTY_PRESERVING = new Set([
  'where',
  'select',
  'trace',
  'first',
  'last',
  'tail',
  'skip',
  'take',
  'distinct',
  'ofType',
  'as',
  'children',
  'descendants',
  'repeat',
  'substring',
  'contains',
  'endsWith',
  'matches',
  'length',
  'lower',
  'upper',
  'toString',
  'resolve',
  'extension',
  'single',
  'memberOf',
  'replace',
  'split',
]);

/** A compiled evaluator returning the invariant's truth value (empty counts as satisfied), or throwing DELEGATE. */
export function compileFast(expression: string, basePath?: string): ((node: unknown) => boolean) | undefined {
  let evaluator: Evaluator;
  try {
    evaluator = compileNode(parse(expression) as AstNode, basePath && staticType(basePath)).fn;
  } catch {
    return undefined;
  }
  return (node) => {
    const result = evaluator([node]);
    if (result.length === 0) return true;
    if (result.length === 1 && typeof result[0] === 'boolean') return result[0];
    throw DELEGATE;
  };
}

function delegate(): never {
  throw DELEGATE;
}

function child(node: AstNode, i: number): AstNode {
  const c = node.children?.[i];
  if (!c) throw new Error(`malformed FHIRPath AST at ${node.type}`);
  return c;
}

const plain = (fn: Evaluator): Compiled => ({ fn });
const DELEGATING: Compiled = { fn: delegate };

function compileNode(node: AstNode, focusPath: string | undefined): Compiled {
  switch (node.type) {
    case 'EntireExpression':
    case 'TermExpression':
    case 'ParenthesizedTerm':
    case 'InvocationTerm':
      return compileNode(child(node, 0), focusPath);
    case 'InvocationExpression': {
      const base = compileNode(child(node, 0), focusPath);
      const step = compileInvocation(child(node, 1), base.path);
      return { fn: (focus) => step.fn(base.fn(focus)), path: step.path };
    }
    case 'MemberInvocation':
    case 'FunctionInvocation':
      return compileInvocation(node, focusPath);
    case 'ThisInvocation':
      // Only reached outside iterating functions (those delegate), where $this is the context node.
      return { fn: (focus) => focus, path: focusPath };
    case 'LiteralTerm':
      return plain(compileLiteral(child(node, 0)));
    case 'ExternalConstantTerm': {
      const name = child(child(node, 0), 0).text;
      if (name === 'ucum') return plain(() => [UCUM]);
      return DELEGATING;
    }
    case 'AndExpression':
    case 'OrExpression':
    case 'ImpliesExpression':
      return plain(
        compileLogic(
          node.text ?? '',
          compileNode(child(node, 0), focusPath).fn,
          compileNode(child(node, 1), focusPath).fn,
        ),
      );
    case 'EqualityExpression':
    case 'InequalityExpression':
      return plain(
        compileComparison(
          node.text ?? '',
          compileNode(child(node, 0), focusPath).fn,
          compileNode(child(node, 1), focusPath).fn,
        ),
      );
    default:
      return DELEGATING; // union, membership, arithmetic, type expressions, indexers...
  }
}

function compileLiteral(node: AstNode): Evaluator {
  const text = node.text ?? '';
  if (node.type === 'StringLiteral') {
    if (text.includes('\\')) return delegate;
    const value = [text.slice(1, -1)];
    return () => value;
  }
  if (node.type === 'NumberLiteral') {
    const value = [Number(text)];
    return () => value;
  }
  if (node.type === 'BooleanLiteral') return () => (text === 'true' ? TRUE : FALSE);
  return delegate;
}

function compileInvocation(node: AstNode, focusPath: string | undefined): Compiled {
  if (node.type === 'MemberInvocation') {
    let name = child(node, 0).text ?? '';
    if (name.startsWith('`')) name = name.slice(1, -1);
    return compileMember(name, focusPath);
  }
  if (node.type !== 'FunctionInvocation') return DELEGATING;
  return plain(compileFunction(node));
}

function compileMember(name: string, focusPath: string | undefined): Compiled {
  if (focusPath === undefined) {
    const suspect = CHOICE_NAMES.has(name);
    return plain((focus) => navigate(focus, name, suspect));
  }
  const path = `${focusPath}.${name}`;
  const choiceTypes = choiceTypePaths[path];
  if (choiceTypes) {
    const keys = choiceTypes.map((t) => name + t);
    return plain((focus) => navigateChoice(focus, keys));
  }
  if (path2Type[path] === undefined) return compileMember(name, undefined); // not in the model: stay dynamic
  return { fn: (focus) => navigate(focus, name, false), path: staticType(path) };
}

/** The path to resolve children against: the element's type, or the element itself for backbones. */
function staticType(path: string): string {
  const type = path2Type[path];
  return type === undefined || type === 'Element' || type === 'BackboneElement' ? path : type;
}

function compileFunction(node: AstNode): Evaluator {
  const functn = child(node, 0);
  const name = child(functn, 0).text ?? '';
  const params = functn.children?.[1]?.children ?? [];
  switch (params.length === 0 ? name : `${name}/${params.length}`) {
    case 'exists':
      return (focus) => (focus.length > 0 ? TRUE : FALSE);
    case 'empty':
      return (focus) => (focus.length === 0 ? TRUE : FALSE);
    case 'not':
      return (focus) => {
        if (focus.length === 0) return EMPTY;
        if (focus.length === 1 && typeof focus[0] === 'boolean') return focus[0] ? FALSE : TRUE;
        return delegate();
      };
    case 'count':
      return (focus) => [focus.length];
    case 'hasValue':
      return (focus) => {
        if (focus.length === 0) return FALSE;
        if (focus.length === 1) return isObject(focus[0]) ? FALSE : TRUE;
        return delegate();
      };
    case 'startsWith/1': {
      const arg = params[0];
      const literal = arg?.type === 'TermExpression' ? arg.children?.[0]?.children?.[0] : undefined;
      if (literal?.type !== 'StringLiteral' || (literal.text ?? '').includes('\\')) break;
      const prefix = (literal.text ?? '').slice(1, -1);
      return (focus) => {
        if (focus.length === 0) return EMPTY;
        if (focus.length === 1 && typeof focus[0] === 'string') return focus[0].startsWith(prefix) ? TRUE : FALSE;
        return delegate();
      };
    }
  }
  if (EMPTY_PRESERVING.has(name)) return (focus) => (focus.length === 0 ? EMPTY : delegate());
  return delegate;
}

/** Child navigation over JSON; delegates whenever FHIR typing would matter. */
function navigate(focus: Collection, name: string, suspectChoice: boolean): Collection {
  let out: unknown[] | undefined;
  for (const item of focus) {
    if (!isObject(item) || item.resourceType === name || item[`_${name}`] !== undefined) return delegate();
    const value = item[name];
    if (value === undefined) {
      if (hasChoiceKey(item, name)) return delegate();
      continue;
    }
    if (suspectChoice) return delegate();
    out ??= [];
    if (Array.isArray(value)) {
      for (const v of value) if (v !== null) out.push(v);
    } else {
      out.push(value);
    }
  }
  return out ?? EMPTY;
}

/** A choice element by its typed keys (value → valueString, valueQuantity...), as the R4 model defines them. */
function navigateChoice(focus: Collection, keys: readonly string[]): Collection {
  let out: unknown[] | undefined;
  for (const item of focus) {
    if (!isObject(item)) return delegate();
    for (const key of keys) {
      if (item[`_${key}`] !== undefined) return delegate();
      const value = item[key];
      if (value === undefined || value === null) continue;
      out ??= [];
      if (Array.isArray(value)) return delegate();
      out.push(value);
    }
  }
  return out ?? EMPTY;
}

function hasChoiceKey(item: Record<string, unknown>, name: string): boolean {
  for (const key of Object.keys(item)) {
    if (key.length > name.length && key.startsWith(name) && isUpper(key.charCodeAt(name.length))) return true;
  }
  return false;
}

/** FHIRPath three-valued logic: undefined is the empty collection. */
function toLogic(c: Collection): boolean | undefined {
  if (c.length === 0) return undefined;
  if (c.length === 1 && typeof c[0] === 'boolean') return c[0];
  return delegate();
}

function fromLogic(b: boolean | undefined): Collection {
  return b === undefined ? EMPTY : b ? TRUE : FALSE;
}

function compileLogic(op: string, left: Evaluator, right: Evaluator): Evaluator {
  switch (op) {
    case 'and':
      return (focus) => {
        const l = toLogic(left(focus));
        if (l === false) return FALSE;
        const r = toLogic(right(focus));
        if (r === false) return FALSE;
        return l === true && r === true ? TRUE : EMPTY;
      };
    case 'or':
      return (focus) => {
        const l = toLogic(left(focus));
        if (l === true) return TRUE;
        const r = toLogic(right(focus));
        if (r === true) return TRUE;
        return l === false && r === false ? FALSE : EMPTY;
      };
    case 'xor':
      return (focus) => {
        const l = toLogic(left(focus));
        const r = toLogic(right(focus));
        return l === undefined || r === undefined ? EMPTY : fromLogic(l !== r);
      };
    case 'implies':
      return (focus) => {
        const l = toLogic(left(focus));
        if (l === false) return TRUE;
        const r = toLogic(right(focus));
        if (r === true) return TRUE;
        return l === true ? fromLogic(r) : EMPTY;
      };
    default:
      return delegate;
  }
}

function compileComparison(op: string, left: Evaluator, right: Evaluator): Evaluator {
  return (focus) => {
    const l = left(focus);
    const r = right(focus);
    if (l.length === 0 || r.length === 0) return EMPTY;
    if (l.length !== 1 || r.length !== 1) return delegate();
    const a = l[0];
    const b = r[0];
    if (op === '=' || op === '!=') {
      // Strings and booleans compare exactly; numbers only as integers (decimal precision rules differ).
      const comparable =
        (typeof a === 'string' && typeof b === 'string') ||
        (typeof a === 'boolean' && typeof b === 'boolean') ||
        (Number.isInteger(a) && Number.isInteger(b));
      if (!comparable) return delegate();
      return (a === b) === (op === '=') ? TRUE : FALSE;
    }
    if (typeof a !== 'number' || typeof b !== 'number') return delegate();
    switch (op) {
      case '<':
        return a < b ? TRUE : FALSE;
      case '>':
        return a > b ? TRUE : FALSE;
      case '<=':
        return a <= b ? TRUE : FALSE;
      case '>=':
        return a >= b ? TRUE : FALSE;
      default:
        return delegate();
    }
  };
}
