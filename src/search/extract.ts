import type { Resource } from '@medplum/fhirtypes';
import { compile } from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { parseDateRange } from '../fhir/dates';
import type { DateElement, IndexElement, QuantityElement, ReferenceElement, TokenElement } from './elements';
import { MAX_DATE, MIN_DATE } from './elements';
import { tooLarge } from '../fhir/outcome';
import { encodeCode, indexText, SHORT_SPAN_MS, SINGLE, SORT_KEY, SPAN_KEY, WIDE } from './keys';
import { canonicalQuantity, normalizeText, UCUM } from './normalize';
import { BUILT_IN, type ParamType, type SearchParam, type SearchParameterRegistry } from './registry';

/** A FHIRPath result: a node with its FHIR type (resolveInternalTypes: false), or a plain value. */
interface Node {
  data: unknown;
  fhirType?: string;
  path?: string;
}

type Evaluator = (input: unknown) => Node[];

interface RawNode {
  data?: unknown;
  fhirNodeDataType?: string | null;
  path?: string | null;
}

/** fhirpath.js wraps decimals in FP_Decimal objects ({value, asStr}) when types are kept. */
function unwrap(data: unknown): unknown {
  if (data !== null && typeof data === 'object' && 'asStr' in data && 'value' in data) {
    return (data as { value: unknown }).value;
  }
  return data;
}

function toNodes(values: unknown[]): Node[] {
  return values.map((value) => {
    if (value !== null && typeof value === 'object' && 'fhirNodeDataType' in value) {
      const raw = value as RawNode;
      return { data: unwrap(raw.data), fhirType: raw.fhirNodeDataType ?? undefined, path: raw.path ?? undefined };
    }
    // A computed number (a literal, iif(...)) comes back as an FP_Decimal without a node.
    return { data: unwrap(value) };
  });
}

const evaluators = new Map<string, Evaluator | null>();

/** Compiles each expression once per process (FHIRPath parsing costs far more than evaluation). */
function evaluator(expression: string, base?: string): Evaluator | undefined {
  const key = `${base ?? ''}\u0000${expression}`;
  let result = evaluators.get(key);
  if (result === undefined) {
    try {
      const compiled = compile(base ? { base, expression } : expression, r4Model, { resolveInternalTypes: false });
      result = (input) => toNodes(compiled(input as Resource) as unknown[]);
    } catch {
      // A few R4 expressions use functions fhirpath.js lacks; such a parameter indexes nothing.
      result = null;
    }
    evaluators.set(key, result);
  }
  return result ?? undefined;
}

function evaluate(expression: string, input: unknown, base?: string): Node[] {
  const run = evaluator(expression, base);
  if (!run) return [];
  try {
    return run(input);
  } catch {
    return [];
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function stringElements(node: Node): IndexElement[] {
  const texts: string[] = [];
  const collect = (value: unknown, key?: string) => {
    if (typeof value === 'string') texts.push(value);
    else if (Array.isArray(value)) value.forEach((v) => collect(v, key));
  };
  if (isObject(node.data)) {
    // HumanName and Address: every text part is searchable (family, given, line, city, ...).
    for (const [key, value] of Object.entries(node.data)) {
      if (key !== 'use' && key !== 'type' && key !== 'id' && key !== 'period' && key !== 'extension')
        collect(value, key);
    }
  } else collect(node.data);
  return texts.map((text) => ({ n: normalizeText(text), e: text }));
}

function codingElement(coding: Json, text?: string): TokenElement {
  const s = str(coding.system);
  const c = str(coding.code);
  const element: TokenElement = {};
  if (s) element.s = s;
  if (c) {
    element.c = c;
    element.sc = `${s ?? ''}|${c}`;
  }
  const display = text ?? str(coding.display);
  if (display) element.x = normalizeText(display);
  return element;
}

function tokenElements(node: Node): IndexElement[] {
  const data = node.data;
  if (typeof data === 'boolean' || typeof data === 'number') return [{ c: String(data), sc: `|${data}` }];
  if (typeof data === 'string') return data ? [{ c: data, sc: `|${data}` }] : [];
  if (!isObject(data)) return [];
  const type = node.fhirType;
  if (type === 'Identifier' || (!type && 'value' in data && !('code' in data))) {
    const value = str(data.value);
    const system = str(data.system);
    if (type !== 'Identifier' && system && !system.includes(':')) return value ? [{ c: value, sc: `|${value}` }] : []; // ContactPoint
    const base: TokenElement = {};
    if (system) base.s = system;
    if (value) {
      base.c = value;
      base.sc = `${system ?? ''}|${value}`;
    }
    const idType = isObject(data.type) ? data.type : undefined;
    if (idType && str(idType.text)) base.x = normalizeText(str(idType.text) as string);
    const typeCodings = Array.isArray(idType?.coding) ? (idType.coding as Json[]) : [];
    if (!typeCodings.length || !value) return [{ ...base }];
    return typeCodings.map((tc) => ({ ...base, ot: `${str(tc.system) ?? ''}|${str(tc.code) ?? ''}|${value}` }));
  }
  if (type === 'ContactPoint') {
    const value = str(data.value);
    return value ? [{ c: value, sc: `|${value}` }] : [];
  }
  if ('coding' in data || type === 'CodeableConcept' || ('text' in data && !('code' in data))) {
    const text = str(data.text);
    const codings = Array.isArray(data.coding) ? (data.coding as Json[]) : [];
    if (!codings.length) return text ? [{ x: normalizeText(text) }] : [];
    return codings.map((coding) => ({ ...codingElement(coding, text ?? undefined) }));
  }
  if ('code' in data || 'system' in data) return [{ ...codingElement(data) }];
  return [];
}

/** Relative "Type/id" references (optionally with /_history/v); anything else is kept as a URL. */
const RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

function referenceElements(node: Node, referenceTypes?: string[]): IndexElement[] {
  const data = node.data;
  if (typeof data === 'string') {
    // canonical or uri-typed reference parameters
    const [url, version] = data.split('|');
    const element: ReferenceElement = { u: url };
    if (version) element.uv = version;
    const relative = RELATIVE.exec(url);
    if (relative) return [{ r: `${relative[1]}/${relative[2]}`, i: relative[2] }];
    return [{ ...element }];
  }
  if (!isObject(data)) return [];
  const element: ReferenceElement = {};
  const reference = str(data.reference);
  let type = str(data.type);
  if (reference && !reference.startsWith('#')) {
    const relative = RELATIVE.exec(reference);
    if (relative) {
      element.r = `${relative[1]}/${relative[2]}`;
      element.i = relative[2];
      type = relative[1];
    } else element.u = reference.replace(/\/_history\/[^/]+$/, '');
  }
  const identifier = isObject(data.identifier) ? data.identifier : undefined;
  if (identifier && str(identifier.value)) element.ident = `${str(identifier.system) ?? ''}|${str(identifier.value)}`;
  if (!element.r && !element.u && !element.ident) return [];
  if (referenceTypes && type && !referenceTypes.includes(type)) return [];
  return [{ ...element }];
}

function range(value: unknown, open: 'start' | 'end'): Date | undefined {
  const parsed = typeof value === 'string' ? parseDateRange(value) : undefined;
  if (!parsed) return undefined;
  return open === 'start' ? parsed.start : parsed.end;
}

export function dateElement(lo: Date, hi: Date): IndexElement {
  const element: DateElement = hi.getTime() - lo.getTime() > SHORT_SPAN_MS ? { lo, hi, [SPAN_KEY]: WIDE } : { lo, hi };
  return { ...element };
}

function dateElements(node: Node): IndexElement[] {
  const data = node.data;
  if (typeof data === 'string') {
    const parsed = parseDateRange(data);
    return parsed ? [dateElement(parsed.start, parsed.end)] : [];
  }
  if (!isObject(data)) return [];
  if ('start' in data || 'end' in data) {
    // Period: an open end means "ongoing" (R4 search, date: Period with no end).
    return [dateElement(range(data.start, 'start') ?? MIN_DATE, range(data.end, 'end') ?? MAX_DATE)];
  }
  if ('event' in data || 'repeat' in data) {
    // Timing: each event, and the bounds of the repeat (R4 search, date: Timing).
    const out: IndexElement[] = [];
    for (const event of Array.isArray(data.event) ? data.event : []) out.push(...dateElements({ data: event }));
    const repeat = isObject(data.repeat) ? data.repeat : undefined;
    if (repeat && isObject(repeat.boundsPeriod)) out.push(...dateElements({ data: repeat.boundsPeriod }));
    return out;
  }
  return [];
}

function numberElements(node: Node): IndexElement[] {
  const data = node.data;
  if (typeof data === 'number') return [{ v: data }];
  if (typeof data === 'string' && data.trim() !== '' && !Number.isNaN(Number(data))) return [{ v: Number(data) }];
  return [];
}

function quantityElements(node: Node): IndexElement[] {
  const data = node.data;
  if (typeof data === 'number') return [{ v: data }];
  if (!isObject(data) || typeof data.value !== 'number') return [];
  const element: QuantityElement = { v: data.value };
  const system = str(data.system) ?? (str(data.currency) ? 'urn:iso:std:iso:4217' : undefined);
  const code = str(data.code) ?? str(data.currency);
  if (system) element.s = system;
  if (code) element.c = code;
  if (str(data.unit)) element.u = str(data.unit);
  if (system === UCUM && code) {
    const canonical = canonicalQuantity(data.value, code);
    if (canonical) {
      element.cv = canonical.value;
      element.cc = canonical.code;
    }
  }
  return [{ ...element }];
}

function uriElements(node: Node): IndexElement[] {
  return typeof node.data === 'string' && node.data ? [{ u: node.data }] : [];
}

function elementsOf(type: ParamType, node: Node, referenceTypes?: string[]): IndexElement[] {
  switch (type) {
    case 'string':
      return stringElements(node);
    case 'token':
      return tokenElements(node);
    case 'reference':
      return referenceElements(node, referenceTypes);
    case 'date':
      return dateElements(node);
    case 'number':
      return numberElements(node);
    case 'quantity':
      return quantityElements(node);
    case 'uri':
      return uriElements(node);
    default:
      return [];
  }
}

/** Composite values: one flat object per combination of component values, keys prefixed "0", "1"... */
function compositeElements(param: SearchParam, node: Node, registry: SearchParameterRegistry): IndexElement[] {
  let combos: IndexElement[] = [{}];
  for (const [index, component] of param.components.entries()) {
    const componentParam = registry.byDefinitionUrl(component.definition);
    if (!componentParam) return [];
    const values = evaluate(component.expression, node.data, node.fhirType ?? node.path).flatMap((n) =>
      elementsOf(componentParam.type, n),
    );
    if (!values.length) return [];
    const next: IndexElement[] = [];
    for (const combo of combos) {
      for (const value of values) {
        const prefixed: IndexElement = { ...combo };
        for (const [key, v] of Object.entries(value)) prefixed[`k${index}${key}`] = v;
        next.push(prefixed);
      }
    }
    combos = next;
  }
  return combos;
}

/** The scalar a parameter sorts by: the smallest of its values (HAPI sorts by the lowest too). */
export function sortValue(type: ParamType, elements: IndexElement[]): string | number | Date | undefined {
  const field = { string: 'n', token: 'c', reference: 'r', date: 'lo', number: 'v', quantity: 'v', uri: 'u' }[
    type as string
  ];
  if (!field) return undefined;
  let best: string | number | Date | undefined;
  for (const element of elements) {
    const value = element[field] ?? (type === 'reference' ? element.u : undefined);
    if (value === undefined || typeof value === 'boolean') continue;
    if (best === undefined || value < best) best = value;
  }
  return best;
}

/** Each string of an element as the index keeps it (see INDEX_VALUE_MAX_LENGTH). */
function bounded(element: IndexElement): IndexElement {
  let result: IndexElement | undefined;
  for (const [field, value] of Object.entries(element)) {
    if (typeof value !== 'string') continue;
    const kept = indexText(value);
    if (kept !== value) (result ??= { ...element })[field] = kept;
  }
  return result ?? element;
}

function dedupe(elements: IndexElement[]): IndexElement[] {
  const seen = new Set<string>();
  return elements.filter((e) => {
    const key = JSON.stringify(e);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The values of one parameter for one resource (exported for reindexing and tests). */
export function extractParam(
  resource: Resource,
  param: SearchParam,
  registry: SearchParameterRegistry,
): IndexElement[] {
  const expression = registry.typeExpression(resource.resourceType, param);
  if (!expression) return [];
  const nodes = evaluate(expression.expression, resource);
  const elements =
    param.type === 'composite'
      ? nodes.flatMap((node) => compositeElements(param, node, registry))
      : nodes.flatMap((node) => elementsOf(param.type, node, expression.referenceTypes));
  return dedupe(elements.map(bounded));
}

/**
 * The `sp` part of a stored document: for each parameter with values, one object (marked SINGLE) when
 * the resource has one value, an array when it has several. Single values are not wrapped in arrays
 * because MongoDB refuses compound indexes over two array fields of one document ("parallel arrays"),
 * and the hot indexes combine patient, status and date, which nearly always have one value each.
 * Empty parameters are left out, so `:missing` is `$exists`. `_sort` holds one scalar per parameter,
 * so keyset paging compares exactly what MongoDB sorted on.
 */
export function extractSearchIndex(
  resource: Resource,
  registry: SearchParameterRegistry,
  maxValues = Infinity,
): Record<string, unknown> {
  const index: Record<string, unknown> = {};
  const sort: Record<string, unknown> = {};
  let values = 0;
  for (const param of registry.forType(resource.resourceType)) {
    if (BUILT_IN.has(param.code)) continue;
    const elements = extractParam(resource, param, registry);
    if (!elements.length) continue;
    values += elements.length;
    if (values > maxValues) throw tooManyValues(resource, param, registry, elements.length, maxValues);
    const key = encodeCode(param.code);
    index[key] = elements.length === 1 ? { ...elements[0], [SINGLE]: true } : elements;
    const value = sortValue(param.type, elements);
    if (value !== undefined) sort[key] = value;
  }
  if (Object.keys(sort).length) index[SORT_KEY] = sort;
  return index;
}

/**
 * A resource whose search values would pass the limit: every later search that reads its document
 * would pay for them (30,000 identifiers made every Patient scan slow). Refused before it is stored.
 */
function tooManyValues(
  resource: Resource,
  param: SearchParam,
  registry: SearchParameterRegistry,
  count: number,
  max: number,
) {
  const type = resource.resourceType;
  const expression = registry.typeExpression(type, param)?.expression ?? type;
  const error = tooLarge(
    `${type} would have more than ${max} search index values (MAX_INDEX_VALUES); ` +
      `the search parameter ${param.code} alone has ${count}`,
  );
  for (const i of error.outcome.issue ?? []) i.expression = [expression];
  return error;
}
