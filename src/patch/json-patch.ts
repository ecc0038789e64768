import type { Resource } from '@medplum/fhirtypes';
import { applyOperation, deepClone, JsonPatchError, type Operation, validate } from 'fast-json-patch';
import { countJsonValues, FORBIDDEN_KEYS } from '../fhir/json-limits';
import { carryNumberTexts, collectNumberTexts, numberText, restoreNumberTexts } from '../fhir/number-text';
import { FhirError, issue, outcome } from '../fhir/outcome';
import { malformedPatch, patchNotApplicable } from './errors';
import { checkOperationCount, DEFAULT_PATCH_LIMITS, type PatchLimits } from './limits';

/** Errors that say the patch document itself is wrong, whatever resource it is applied to. */
const MALFORMED = new Set([
  'SEQUENCE_NOT_AN_ARRAY',
  'OPERATION_NOT_AN_OBJECT',
  'OPERATION_OP_INVALID',
  'OPERATION_PATH_INVALID',
  'OPERATION_FROM_REQUIRED',
  'OPERATION_VALUE_REQUIRED',
  'OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED',
]);

/**
 * Our own words for fast-json-patch's errors: its messages quote the whole document they were applied
 * to, which is the stored resource, and an error must not show what the client may not have seen.
 */
const REASONS: Record<string, string> = {
  SEQUENCE_NOT_AN_ARRAY: 'a JSON Patch must be an array of operations',
  OPERATION_NOT_AN_OBJECT: 'an operation must be a JSON object',
  OPERATION_OP_INVALID: 'op must be add, remove, replace, move, copy or test',
  OPERATION_PATH_INVALID: 'path must be a JSON Pointer (a string starting with "/")',
  OPERATION_FROM_REQUIRED: 'move and copy need a from pointer',
  OPERATION_VALUE_REQUIRED: 'add, replace and test need a value',
  OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED: 'the value must be JSON',
  OPERATION_PATH_CANNOT_ADD: 'cannot add at this path',
  OPERATION_PATH_UNRESOLVABLE: 'the path does not exist in the resource',
  OPERATION_FROM_UNRESOLVABLE: 'from does not exist in the resource',
  OPERATION_PATH_ILLEGAL_ARRAY_INDEX: 'an array index must be a number',
  OPERATION_VALUE_OUT_OF_BOUNDS: 'the array index is out of bounds',
  TEST_OPERATION_FAILED: 'the test failed: the value differs',
};

/**
 * A JSON Pointer as the FHIRPath-ish element it addresses (/name/0/family → Patient.name[0].family),
 * so that errors carry an expression like every other OperationOutcome; `_birthDate` names birthDate.
 */
export function pointerToExpression(resourceType: string, pointer: string): string {
  let expression = resourceType;
  for (const segment of pointerSegments(pointer)) {
    if (/^\d+$/.test(segment)) expression += `[${segment}]`;
    else if (segment !== '-') expression += `.${segment.replace(/^_/, '')}`;
  }
  return expression;
}

function pointerSegments(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Request data quoted in a message, cut short: a path may be a megabyte long. */
function quote(text: unknown): string {
  const value = String(text);
  return value.length > 200 ? `${value.slice(0, 200)}...` : value;
}

function describe(operation: unknown): string {
  if (operation === null || typeof operation !== 'object') return 'not an object';
  const { op, path } = operation as { op?: unknown; path?: unknown };
  return `${quote(op)} ${quote(path)}`;
}

type Json = Record<string, unknown>;

/** A validator for applyOperation that adds nothing to the checks made here (see applyJsonPatch). */
const skipDocumentChecks = (): void => undefined;

/**
 * The value a pointer names, walking own properties only: fast-json-patch reads `obj[key]`, which for
 * a string value and the key `seed` is a prototype's property, not the resource's. Undefined when the
 * pointer names nothing; `parentOnly` stops at the container (where `add` writes).
 */
function resolve(document: unknown, segments: string[], parentOnly: boolean): { found: boolean; value?: unknown } {
  let node = document;
  const last = parentOnly ? segments.length - 1 : segments.length;
  for (let i = 0; i < last; i++) {
    const segment = segments[i];
    if (Array.isArray(node)) {
      if (!/^(0|[1-9]\d*)$/.test(segment) || Number(segment) >= node.length) return { found: false };
      node = node[Number(segment)];
    } else if (node !== null && typeof node === 'object' && Object.hasOwn(node, segment)) {
      node = (node as Json)[segment];
    } else {
      return { found: false };
    }
  }
  if (parentOnly && (node === null || typeof node !== 'object')) return { found: false };
  return { found: true, value: node };
}

/** Checks one pointer of an operation against the document as the operations before it left it. */
function checkPointer(
  document: unknown,
  operation: Operation,
  index: number,
  key: 'path' | 'from',
  type: string,
): unknown {
  const pointer = (operation as unknown as Json)[key] as string;
  const segments = pointerSegments(pointer);
  const expression = [pointerToExpression(type, pointer)];
  const which = `JSON Patch operation ${index} (${describe(operation)})`;
  const forbidden = segments.find((s) => FORBIDDEN_KEYS.has(s));
  if (forbidden !== undefined) throw malformedPatch(`${which}: "${forbidden}" is not an element name`, expression);
  // add, move and copy write into an existing container; every other pointer names an existing value.
  const writes = key === 'path' && (operation.op === 'add' || operation.op === 'move' || operation.op === 'copy');
  const resolved = resolve(document, segments, writes);
  if (!resolved.found) {
    const reason = key === 'from' ? REASONS.OPERATION_FROM_UNRESOLVABLE : REASONS.OPERATION_PATH_UNRESOLVABLE;
    throw withName(patchNotApplicable(`${which}: ${reason}`, expression), 'OPERATION_PATH_UNRESOLVABLE', index);
  }
  return resolved.value;
}

function withName(error: FhirError, name: string, index: number): FhirError {
  for (const i of error.outcome.issue ?? []) i.diagnostics = `${name} at JSON Patch operation index /${index}`;
  return error;
}

function tooLargeResult(index: number, limits: PatchLimits, type: string): FhirError {
  return new FhirError(
    413,
    outcome([
      issue(
        'error',
        'too-costly',
        `JSON Patch operation ${index} would make the resource larger than ${limits.maxElements} JSON values (MAX_RESOURCE_ELEMENTS)`,
        type,
      ),
    ]),
  );
}

/**
 * Applies an RFC 6902 JSON Patch to a copy of the resource, one operation at a time, each checked
 * first against the document the operations before it made: a patch that is not a well-formed
 * operation list is 400; one that does not fit this resource (a failed test, a path that does not
 * exist) is 422; one whose copies would grow the resource past the limit is 413 (a copy of a copy
 * doubles it each time). Errors name the operation's index and the element it addresses.
 */
export function applyJsonPatch(
  resource: Resource,
  patch: unknown,
  limits: PatchLimits = DEFAULT_PATCH_LIMITS,
): Resource {
  const type = resource.resourceType;
  if (!Array.isArray(patch)) {
    throw malformedPatch('A JSON Patch document must be an array of operations', [type]);
  }
  checkOperationCount('JSON Patch', patch.length, limits, type);
  // Shape first, without the document, so a malformed op is 400 even where the resource would also fail.
  const shapeError = validate(patch as Operation[]);
  if (shapeError) throw toFhirError(shapeError, type, malformedPatch);
  let document: unknown = deepClone(resource);
  let elements = countJsonValues(document, limits.maxElements + 1);
  for (const [index, operation] of (patch as Operation[]).entries()) {
    const target = checkPointer(document, operation, index, 'path', type);
    if (operation.op === 'move' || operation.op === 'copy') {
      const source = checkPointer(document, operation, index, 'from', type);
      if (operation.op === 'copy') elements += countJsonValues(source, limits.maxElements + 1);
    }
    if (operation.op === 'add' || operation.op === 'replace') {
      elements += countJsonValues(operation.value, limits.maxElements + 1);
      if (operation.op === 'replace') elements -= countJsonValues(target, limits.maxElements + 1);
    }
    if (elements > limits.maxElements) throw tooLargeResult(index, limits, type);
    try {
      // A copy of the operation: the library writes patch values into the document by reference.
      // Pointers were checked above; the library's own check of a copy or move clones the whole
      // document each time, so only its array-index checks run (they come with any validator).
      const checked = applyOperation(
        document,
        deepClone(operation) as Operation,
        skipDocumentChecks,
        true,
        true,
        index,
      );
      document = checked.newDocument;
    } catch (error) {
      if (error instanceof JsonPatchError) {
        throw toFhirError(error, type, MALFORMED.has(error.name) ? malformedPatch : patchNotApplicable);
      }
      // fast-json-patch refuses __proto__ and constructor/prototype paths with a TypeError.
      throw malformedPatch(`JSON Patch operation ${index} (${describe(operation)}) cannot be applied`, [type]);
    }
  }
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw patchNotApplicable('The JSON Patch leaves something other than a resource (a JSON object)', [type]);
  }
  carryNumberTexts(resource, document);
  keepWrittenValues(patch as Operation[], document);
  return document as Resource;
}

/**
 * The clones above drop the written text of numbers (src/fhir/number-text.ts); put back that of the
 * numbers an `add` or `replace` wrote (`"value": 1.50` stays 1.50). Texts land only where the
 * pointer still names the same number.
 */
function keepWrittenValues(patch: Operation[], result: object): void {
  for (const op of patch) {
    if ((op.op !== 'add' && op.op !== 'replace') || typeof op.path !== 'string') continue;
    const path = op.path.endsWith('/-') ? appendedPointer(result, op.path) : op.path;
    if (path === undefined) continue;
    const own = numberText(op, 'value');
    if (own !== undefined) restoreNumberTexts(result, [{ p: path, t: own }]);
    const inner = collectNumberTexts(op.value);
    if (inner)
      restoreNumberTexts(
        result,
        inner.map((e) => ({ p: `${path}${e.p}`, t: e.t })),
      );
  }
}

/** `/a/-` (append) as the pointer of the element it appended: the array's last index. */
function appendedPointer(result: object, path: string): string | undefined {
  let node: unknown = result;
  const parent = path.slice(0, -2);
  for (const raw of parent.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[segment] : undefined;
  }
  return Array.isArray(node) && node.length > 0 ? `${parent}/${node.length - 1}` : undefined;
}

function toFhirError(
  error: InstanceType<typeof JsonPatchError>,
  type: string,
  build: typeof malformedPatch,
): ReturnType<typeof malformedPatch> {
  const index = error.index;
  const operation = error.operation as unknown;
  const pointer = (operation as { path?: unknown } | undefined)?.path;
  const expression = typeof pointer === 'string' && pointer.startsWith('/') ? pointerToExpression(type, pointer) : type;
  const which = index === undefined ? '' : `JSON Patch operation ${index} (${describe(operation)}): `;
  const reason = REASONS[error.name] ?? 'the operation cannot be applied';
  const fhirError = build(`${which}${reason}`, [expression]);
  for (const i of fhirError.outcome.issue ?? []) {
    i.diagnostics = index === undefined ? error.name : `${error.name} at JSON Patch operation index /${index}`;
  }
  return fhirError;
}
