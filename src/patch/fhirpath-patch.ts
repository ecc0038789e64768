import type { Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { compile } from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { carryNumberTexts } from '../fhir/number-text';
import { findElement, isPrimitiveType, type PatchElement, upperFirst } from './elements';
import { malformedPatch, patchNotApplicable } from './errors';
import { checkOperationCount, DEFAULT_PATCH_LIMITS, type PatchLimits } from './limits';

/**
 * FHIRPath Patch (R4 fhirpatch.html): a Parameters resource whose `operation` parameters add, insert,
 * delete, replace and move elements located by FHIRPath. Operations apply in order, each to the
 * result of the one before; the stored resource is never touched (the patch works on a copy).
 */

type Json = Record<string, unknown>;
type OperationType = 'add' | 'insert' | 'delete' | 'replace' | 'move';
const OPERATION_TYPES = new Set<string>(['add', 'insert', 'delete', 'replace', 'move']);

interface PatchOperation {
  /** Position in Parameters.parameter, for error expressions. */
  at: number;
  type: OperationType;
  path: string;
  name?: string;
  value?: ParametersParameter;
  index?: number;
  source?: number;
  destination?: number;
}

/** The part of fhirpath.js's ResourceNode (results with resolveInternalTypes: false) that locates JSON. */
interface ResourceNode {
  data: unknown;
  _data: unknown;
  path: string | null;
  fhirNodeDataType: string | null;
  propName: string | null;
  index: number | null;
  parentResNode: ResourceNode | null;
}

/** A value to write: its JSON, the `_name` object of a primitive (id, extension), and its FHIR type if known. */
interface Value {
  json: unknown;
  ext?: Json;
  type?: string;
}

/** Where a node lives in its parent's JSON: container[key] or container[key][index]. */
interface Slot {
  container: Json;
  key: string;
  index?: number;
}

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

function isResourceNode(v: unknown): v is ResourceNode {
  return isObject(v) && 'parentResNode' in v && 'propName' in v;
}

const where = (op: { at: number }) => `Parameters.parameter[${op.at}]`;

export function applyFhirPathPatch(
  resource: Resource,
  patch: Parameters,
  limits: PatchLimits = DEFAULT_PATCH_LIMITS,
): Resource {
  const operations = parseOperations(patch, limits);
  const doc = structuredClone(resource) as unknown as Json;
  for (const op of operations) applyOperation(doc, op);
  // structuredClone drops the written text of numbers: keep it where the patch left a number alone.
  carryNumberTexts(resource, doc);
  return doc as unknown as Resource;
}

/** The parameters of a Parameters as a list of objects (the envelope was validated; this trusts nothing). */
function listOf(value: unknown, expression: string): ParametersParameter[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every(isObject)) {
    throw malformedPatch(`${expression} must be an array of parameters`, [expression]);
  }
  return value as unknown as ParametersParameter[];
}

function parseOperations(patch: Parameters, limits: PatchLimits): PatchOperation[] {
  const parameters = listOf(patch.parameter, 'Parameters.parameter');
  checkOperationCount('FHIRPath Patch', parameters.length, limits, 'Parameters.parameter');
  return parameters.map((parameter, at) => {
    const expression = [`Parameters.parameter[${at}]`];
    if (parameter.name !== 'operation') {
      const name = typeof parameter.name === 'string' ? parameter.name.slice(0, 100) : '';
      throw malformedPatch(`Parameter ${at} is named "${name}"; FHIRPath Patch has only "operation"`, [
        `Parameters.parameter[${at}].name`,
      ]);
    }
    const parts = new Map<string, ParametersParameter>();
    for (const part of listOf(parameter.part, `Parameters.parameter[${at}].part`)) {
      if (typeof part.name !== 'string') throw malformedPatch(`Operation ${at} has a part without a name`, expression);
      if (parts.has(part.name))
        throw malformedPatch(`Operation ${at} has more than one "${part.name}" part`, expression);
      parts.set(part.name, part);
    }
    const type = parts.get('type')?.valueCode ?? parts.get('type')?.valueString;
    if (!type || !OPERATION_TYPES.has(type)) {
      throw malformedPatch(
        `Operation ${at} needs a type part of add, insert, delete, replace or move${type ? `, not "${type}"` : ''}`,
        expression,
      );
    }
    const path = parts.get('path')?.valueString;
    if (!path || typeof path !== 'string') {
      throw malformedPatch(`Operation ${at} (${type}) needs a path part (valueString)`, expression);
    }
    if (path.length > limits.maxFhirPathLength) {
      throw malformedPatch(
        `Operation ${at} (${type}): the path is longer than ${limits.maxFhirPathLength} characters (MAX_FHIRPATH_LENGTH)`,
        expression,
      );
    }
    const op: PatchOperation = { at, type: type as OperationType, path };
    const integer = (name: string): number => {
      const value = parts.get(name)?.valueInteger;
      if (value === undefined || !Number.isInteger(value) || value < 0) {
        throw malformedPatch(
          `Operation ${at} (${type}) needs a ${name} part (a valueInteger of 0 or more)`,
          expression,
        );
      }
      return value;
    };
    const required = (name: string): ParametersParameter => {
      const part = parts.get(name);
      if (!part) throw malformedPatch(`Operation ${at} (${type}) needs a ${name} part`, expression);
      return part;
    };
    if (type === 'add') {
      op.name = required('name').valueString;
      if (!op.name) throw malformedPatch(`Operation ${at} (add) needs a name part (valueString)`, expression);
    }
    if (type === 'add' || type === 'insert' || type === 'replace') op.value = checkValuePart(required('value'), op);
    if (type === 'insert') op.index = integer('index');
    if (type === 'move') {
      op.source = integer('source');
      op.destination = integer('destination');
    }
    return op;
  });
}

/** A value part carries exactly one of value[x], resource, or parts (for anonymous backbone types). */
function checkValuePart(part: ParametersParameter, op: PatchOperation): ParametersParameter {
  const kinds = Object.keys(part).filter((k) => /^value[A-Z]/.test(k) || k === 'resource' || k === 'part');
  if (kinds.length !== 1) {
    throw malformedPatch(
      `Operation ${op.at} (${op.type}): the value part must have exactly one of value[x], resource or part`,
      [where(op)],
    );
  }
  return part;
}

function applyOperation(doc: Json, op: PatchOperation): void {
  const nodes = select(doc, op);
  switch (op.type) {
    case 'add':
      return add(op, single(nodes, op, 'adding'));
    case 'replace':
      return replace(op, single(nodes, op, 'replacing'));
    case 'delete':
      // Deleting what is not there is not an error (the spec's "delete ... if found").
      if (nodes.length === 0) return;
      return remove(single(nodes, op, 'deleting'), op);
    case 'insert':
    case 'move':
      return reorder(doc, op, nodes);
  }
}

/** Evaluates the operation's path; it must select elements of this resource, not computed values. */
function select(doc: Json, op: PatchOperation, path = op.path): ResourceNode[] {
  let run: (resource: Json) => unknown[];
  try {
    const compiled = compile(quoteKeywordSteps(path), r4Model, { resolveInternalTypes: false });
    run = (resource) => compiled(resource as unknown as Resource) as unknown[];
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw malformedPatch(`Operation ${op.at} (${op.type}): the path "${path}" is not valid FHIRPath: ${detail}`, [
      where(op),
    ]);
  }
  let results: unknown[];
  try {
    results = run(doc);
  } catch {
    // fhirpath.js's evaluation errors may quote the values it met, which are the stored resource's.
    throw malformedPatch(`Operation ${op.at} (${op.type}): the path "${path}" cannot be evaluated on this resource`, [
      where(op),
    ]);
  }
  if (!results.every(isResourceNode)) {
    throw patchNotApplicable(
      `Operation ${op.at} (${op.type}): the path "${path}" selects computed values, not elements of the resource`,
      [where(op), path],
    );
  }
  return results;
}

/**
 * `Patient.text.div` names an element, but FHIRPath reserves `div` (and `mod`, `and`, ...) as operators,
 * so fhirpath.js cannot parse it; after a dot only an element or function can follow, so such a step is
 * quoted as a delimited identifier. The official patch tests use `Patient.text.div`. String literals
 * are left alone.
 */
export function quoteKeywordSteps(path: string): string {
  return path
    .split(/('(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`)/)
    .map((piece, i) =>
      i % 2 === 1 ? piece : piece.replace(/\.\s*(div|mod|and|or|xor|implies|is|as|in|contains)\b(?!\s*\()/g, '.`$1`'),
    )
    .join('');
}

function single(nodes: ResourceNode[], op: PatchOperation, doing: string): ResourceNode {
  if (nodes.length === 1) return nodes[0];
  throw patchNotApplicable(
    nodes.length === 0
      ? `Operation ${op.at}: No content found at ${op.path} when ${doing}`
      : `Operation ${op.at}: the path ${op.path} matches ${nodes.length} elements; ${op.type} needs exactly one`,
    [where(op), op.path],
  );
}

/** The JSON object holding a node's children: the node's own object, or `_name` for a primitive. */
function childObject(node: ResourceNode, create: boolean): Json | undefined {
  if (!isPrimitiveType(node.fhirNodeDataType) && isObject(node.data)) return node.data;
  if (isObject(node._data)) return node._data;
  if (!create) return undefined;
  const slot = slotOf(node);
  if (!slot) return undefined;
  const ext: Json = {};
  setExt(slot, ext);
  return ext;
}

/** Where the node sits in its parent's JSON; undefined for the resource itself. */
function slotOf(node: ResourceNode): Slot | undefined {
  const parent = node.parentResNode;
  if (!parent || !node.propName) return undefined;
  const container = childObject(parent, false);
  if (!container) return undefined;
  const prop = node.propName;
  // A choice element is found by its base name (deceased); its JSON key carries the type.
  const key = prop in container || `_${prop}` in container ? prop : prop + upperFirst(node.fhirNodeDataType ?? '');
  return { container, key, index: node.index ?? undefined };
}

function requireSlot(node: ResourceNode, op: PatchOperation): Slot {
  const slot = slotOf(node);
  if (!slot) {
    throw patchNotApplicable(`Operation ${op.at} (${op.type}) cannot change the resource itself (${op.path})`, [
      where(op),
      op.path,
    ]);
  }
  return slot;
}

function setExt(slot: Slot, ext: Json | undefined): void {
  const extKey = `_${slot.key}`;
  if (slot.index === undefined) {
    if (ext) slot.container[extKey] = ext;
    else delete slot.container[extKey];
    return;
  }
  const values = slot.container[slot.key];
  const length = Array.isArray(values) ? values.length : slot.index + 1;
  let exts = slot.container[extKey];
  if (!Array.isArray(exts)) {
    if (!ext) return;
    exts = new Array<unknown>(length).fill(null);
    slot.container[extKey] = exts;
  }
  const list = exts as unknown[];
  while (list.length < length) list.push(null);
  list[slot.index] = ext ?? null;
  tidyExtensions(slot.container, slot.key);
}

/** An `_name` array of nulls says nothing: drop it, as a FHIR JSON serializer would. */
function tidyExtensions(container: Json, key: string): void {
  const exts = container[`_${key}`];
  if (Array.isArray(exts) && exts.every((e) => e === null)) delete container[`_${key}`];
}

function replace(op: PatchOperation, node: ResourceNode): void {
  const slot = requireSlot(node, op);
  const value = materialize(op.value as ParametersParameter, slotElement(node)?.childPath, op);
  // Replacing a choice element with another type changes its key (valueQuantity → valueString).
  if (node.propName && slot.key !== node.propName && value.type) {
    const key = node.propName + upperFirst(value.type);
    if (key !== slot.key) {
      delete slot.container[slot.key];
      delete slot.container[`_${slot.key}`];
      slot.key = key;
    }
  }
  if (slot.index === undefined) {
    if (value.json === undefined) delete slot.container[slot.key];
    else slot.container[slot.key] = value.json;
  } else {
    (slot.container[slot.key] as unknown[])[slot.index] = value.json ?? null;
  }
  setExt(slot, value.ext);
}

/** The definition of the element a node is, found through its parent's model path. */
function slotElement(node: ResourceNode): PatchElement | undefined {
  const parent = node.parentResNode;
  if (!parent?.path || !node.propName) return undefined;
  return findElement(parent.path, node.propName)?.element;
}

function remove(node: ResourceNode, op: PatchOperation): void {
  const slot = requireSlot(node, op);
  removeSlot(slot);
  prune(node.parentResNode);
}

function removeSlot(slot: Slot): void {
  const { container, key, index } = slot;
  if (index === undefined) {
    delete container[key];
    delete container[`_${key}`];
    return;
  }
  const values = container[key];
  if (Array.isArray(values)) values.splice(index, 1);
  const exts = container[`_${key}`];
  if (Array.isArray(exts)) exts.splice(index, 1);
  if (!Array.isArray(values) || values.length === 0) {
    delete container[key];
    delete container[`_${key}`];
  } else {
    tidyExtensions(container, key);
  }
}

/**
 * Removes the elements a deletion left empty, upwards (an empty object is not valid FHIR JSON): the
 * spec's test "Delete Nested Primitive #2" expects Patient.contact.name to go with its only child.
 */
function prune(node: ResourceNode | null): void {
  for (let current = node; current; current = current.parentResNode) {
    const slot = slotOf(current);
    if (!slot) return;
    if (isPrimitiveType(current.fhirNodeDataType)) {
      // A primitive whose `_name` part is now empty keeps its value and loses only that part.
      if (isObject(current._data) && Object.keys(current._data).length === 0) setExt(slot, undefined);
      if (current.data !== undefined && current.data !== null) return;
      if (isObject(current._data) && Object.keys(current._data).length > 0) return;
    } else if (!isObject(current.data) || Object.keys(current.data).length > 0) {
      return;
    }
    removeSlot(slot);
  }
}

function add(op: PatchOperation, node: ResourceNode): void {
  const name = op.name as string;
  const typePath = node.path ?? '';
  const found = findElement(typePath, name);
  if (!found) {
    throw patchNotApplicable(`Operation ${op.at} (add): ${typePath} has no element "${name}"`, [where(op), op.path]);
  }
  const target = childObject(node, true);
  if (!target) {
    throw patchNotApplicable(`Operation ${op.at} (add): cannot add to ${op.path}`, [where(op), op.path]);
  }
  const value = materialize(op.value as ParametersParameter, found.element.childPath, op);
  const key = jsonKey(found.element, found.type ?? value.type, op);
  if (found.element.array) {
    const list = Array.isArray(target[key]) ? (target[key] as unknown[]) : [];
    target[key] = list;
    list.push(value.json ?? null);
    setExt({ container: target, key, index: list.length - 1 }, value.ext);
    return;
  }
  if (target[key] !== undefined || target[`_${key}`] !== undefined) {
    throw patchNotApplicable(
      `Operation ${op.at} (add): ${op.path}.${name} already has a value; use replace to change it`,
      [where(op), `${op.path}.${name}`],
    );
  }
  if (value.json !== undefined) target[key] = value.json;
  setExt({ container: target, key }, value.ext);
}

function jsonKey(element: PatchElement, type: string | undefined, op: PatchOperation): string {
  if (!element.choice) return element.name;
  if (!type || !element.types.includes(type)) {
    throw patchNotApplicable(
      `Operation ${op.at} (${op.type}): ${element.name}[x] takes one of ${element.types.join(', ')}${type ? `, not ${type}` : ''}`,
      [where(op), op.path],
    );
  }
  return element.name + upperFirst(type);
}

/**
 * The list an insert or move works on. When the path selects items, their common parent list; when
 * it selects nothing, the list is empty and is found through the path's last step (Patient.identifier).
 */
function listSlot(doc: Json, op: PatchOperation, nodes: ResourceNode[]): { slot: Slot; element?: PatchElement } {
  if (nodes.length > 0) {
    const first = requireSlot(nodes[0], op);
    for (const node of nodes) {
      const slot = requireSlot(node, op);
      if (slot.container !== first.container || slot.key !== first.key || slot.index === undefined) {
        throw patchNotApplicable(`Operation ${op.at} (${op.type}): ${op.path} does not select one list`, [
          where(op),
          op.path,
        ]);
      }
    }
    return { slot: { container: first.container, key: first.key }, element: slotElement(nodes[0]) };
  }
  const step = /^(.+)\.([A-Za-z][A-Za-z0-9_]*)$/.exec(op.path);
  const parents = step ? select(doc, op, step[1]) : [];
  const parent = parents.length === 1 ? parents[0] : undefined;
  const found = parent?.path && step ? findElement(parent.path, step[2]) : undefined;
  const container = parent ? childObject(parent, false) : undefined;
  if (!found?.element.array || !container) {
    throw patchNotApplicable(`Operation ${op.at} (${op.type}): No list found at ${op.path}`, [where(op), op.path]);
  }
  return { slot: { container, key: found.element.name }, element: found.element };
}

function reorder(doc: Json, op: PatchOperation, nodes: ResourceNode[]): void {
  const { slot, element } = listSlot(doc, op, nodes);
  if (element && !element.array) {
    throw patchNotApplicable(`Operation ${op.at} (${op.type}): ${op.path} is not a list`, [where(op), op.path]);
  }
  const { container, key } = slot;
  const list = Array.isArray(container[key]) ? (container[key] as unknown[]) : [];
  const exts = Array.isArray(container[`_${key}`]) ? (container[`_${key}`] as unknown[]) : undefined;
  const outOfRange = (what: string, value: number, max: number) =>
    patchNotApplicable(
      `Operation ${op.at} (${op.type}): ${what} ${value} is outside the list ${op.path} (0 to ${max})`,
      [where(op), op.path],
    );
  if (op.type === 'insert') {
    const index = op.index as number;
    if (index > list.length) throw outOfRange('index', index, list.length);
    const value = materialize(op.value as ParametersParameter, element?.childPath, op);
    list.splice(index, 0, value.json ?? null);
    exts?.splice(index, 0, null);
    container[key] = list;
    setExt({ container, key, index }, value.ext);
    return;
  }
  const source = op.source as number;
  const destination = op.destination as number;
  if (source >= list.length) throw outOfRange('source', source, list.length - 1);
  if (destination >= list.length) throw outOfRange('destination', destination, list.length - 1);
  list.splice(destination, 0, ...list.splice(source, 1));
  if (exts) {
    while (exts.length < list.length) exts.push(null);
    exts.splice(destination, 0, ...exts.splice(source, 1));
  }
}

const PRIMITIVE_SUFFIX =
  /^(Boolean|Integer|String|Decimal|Uri|Url|Canonical|Base64Binary|Instant|Date|DateTime|Time|Code|Oid|Id|Markdown|UnsignedInt|PositiveInt|Uuid)$/;

/**
 * Turns a value part into JSON: value[x] (its type from the key, `_value[x]` for a primitive's
 * extensions), a resource, or parts naming the children of an anonymous type (Patient.contact),
 * laid out by the element definitions under `childPath` (arrays, choice keys).
 */
function materialize(part: ParametersParameter, childPath: string | undefined, op: PatchOperation): Value {
  const record = part as unknown as Json;
  if (part.resource) return { json: structuredClone(part.resource), type: part.resource.resourceType };
  if (part.part) {
    const json: Json = {};
    for (const child of part.part) {
      if (!child.name) throw malformedPatch(`Operation ${op.at} (${op.type}): a value part has no name`, [where(op)]);
      const found = childPath ? findElement(childPath, child.name) : undefined;
      const value = materialize(child, found?.element.childPath, op);
      const key = found ? jsonKey(found.element, found.type ?? value.type, op) : child.name;
      const repeated = found ? found.element.array : part.part.filter((p) => p.name === child.name).length > 1;
      if (repeated) {
        const list = Array.isArray(json[key]) ? (json[key] as unknown[]) : [];
        json[key] = list;
        list.push(value.json ?? null);
        setExt({ container: json, key, index: list.length - 1 }, value.ext);
      } else {
        if (value.json !== undefined) json[key] = value.json;
        setExt({ container: json, key }, value.ext);
      }
    }
    return { json };
  }
  const key = Object.keys(record).find((k) => /^value[A-Z]/.test(k));
  if (!key) throw malformedPatch(`Operation ${op.at} (${op.type}): a value part has no value`, [where(op)]);
  const suffix = key.slice('value'.length);
  const type = PRIMITIVE_SUFFIX.test(suffix) ? suffix.charAt(0).toLowerCase() + suffix.slice(1) : suffix;
  const ext = record[`_${key}`];
  return { json: structuredClone(record[key]), ext: isObject(ext) ? structuredClone(ext) : undefined, type };
}
