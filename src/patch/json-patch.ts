import type { Resource } from '@medplum/fhirtypes';
import { applyPatch, deepClone, JsonPatchError, type Operation, validate } from 'fast-json-patch';
import { carryNumberTexts, collectNumberTexts, numberText, restoreNumberTexts } from '../fhir/number-text';
import { malformedPatch, patchNotApplicable } from './errors';

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
 * A JSON Pointer as the FHIRPath-ish element it addresses (/name/0/family → Patient.name[0].family),
 * so that errors carry an expression like every other OperationOutcome; `_birthDate` names birthDate.
 */
export function pointerToExpression(resourceType: string, pointer: string): string {
  let expression = resourceType;
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(segment)) expression += `[${segment}]`;
    else if (segment !== '-') expression += `.${segment.replace(/^_/, '')}`;
  }
  return expression;
}

function describe(operation: unknown): string {
  if (operation === null || typeof operation !== 'object') return JSON.stringify(operation) ?? String(operation);
  const { op, path } = operation as { op?: unknown; path?: unknown };
  return `${String(op)} ${String(path)}`;
}

/**
 * Applies an RFC 6902 JSON Patch with fast-json-patch to a copy of the resource. A patch that is not
 * a well-formed operation list is 400; one that does not fit this resource (a failed test, a path
 * that does not exist) is 422. Errors name the operation's index and the element it addresses.
 */
export function applyJsonPatch(resource: Resource, patch: unknown): Resource {
  const type = resource.resourceType;
  if (!Array.isArray(patch)) {
    throw malformedPatch('A JSON Patch document must be an array of operations', [type]);
  }
  // Shape first, without the document, so a malformed op is 400 even where the resource would also fail.
  const shapeError = validate(patch as Operation[]);
  if (shapeError) throw toFhirError(shapeError, type, malformedPatch);
  let result: unknown;
  try {
    // Cloned twice over: the library writes patch values into the document by reference.
    result = applyPatch(deepClone(resource) as Resource, deepClone(patch) as Operation[], true, true).newDocument;
  } catch (error) {
    if (error instanceof JsonPatchError) {
      throw toFhirError(error, type, MALFORMED.has(error.name) ? malformedPatch : patchNotApplicable);
    }
    // fast-json-patch refuses __proto__ and constructor/prototype paths with a TypeError.
    const detail = error instanceof Error ? error.message : String(error);
    throw malformedPatch(`The JSON Patch cannot be applied: ${detail}`, [type]);
  }
  if (result === null || typeof result !== 'object' || Array.isArray(result)) {
    throw patchNotApplicable('The JSON Patch leaves something other than a resource (a JSON object)', [type]);
  }
  carryNumberTexts(resource, result);
  keepWrittenValues(patch as Operation[], result);
  return result as Resource;
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
  const reason = error.name === 'TEST_OPERATION_FAILED' ? 'the test failed: the value differs' : error.message;
  const fhirError = build(`${which}${reason}`, [expression]);
  for (const i of fhirError.outcome.issue ?? []) {
    i.diagnostics = index === undefined ? error.name : `${error.name} at JSON Patch operation index /${index}`;
  }
  return fhirError;
}
