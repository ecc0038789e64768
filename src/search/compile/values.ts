import { badRequest, notSupported } from '../../fhir/outcome';
import { parseDateRange } from '../../fhir/dates';
import { canonicalQuantity, escapeRegex, normalizeText, UCUM } from '../normalize';
import { indexText } from '../keys';
import { splitEscaped, unescapeValue } from '../parse';
import type { ParamType, SearchParam } from '../registry';
import { prefixKeys, type Conjunction, type Disjunction } from './element';

/** What compiling one value may need besides the value itself. */
export interface ValueContext {
  param: SearchParam;
  modifier?: string;
  /** Absolute FHIR base, so that references written as absolute URLs to this server match. */
  baseUrl: string;
  now: Date;
  /** Name for error messages. */
  name: string;
}

const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
export type Prefix = (typeof PREFIXES)[number];

export function splitPrefix(value: string): { prefix: Prefix; rest: string } {
  const head = value.slice(0, 2);
  if ((PREFIXES as readonly string[]).includes(head) && /^[-+.\d]/.test(value.slice(2))) {
    return { prefix: head as Prefix, rest: value.slice(2) };
  }
  return { prefix: 'eq', rest: value };
}

function malformed(ctx: ValueContext, value: string, why: string): Error {
  return badRequest(`Invalid value "${value}" for ${ctx.name}: ${why}`, ctx.name);
}

function stringValue(ctx: ValueContext, value: string): Disjunction {
  const text = unescapeValue(value);
  switch (ctx.modifier) {
    case undefined:
      return [{ n: { $regex: `^${escapeRegex(indexText(normalizeText(text)))}` } }];
    case 'exact':
      return [{ e: text }];
    case 'contains':
      return [{ n: { $regex: escapeRegex(indexText(normalizeText(text))) } }];
    default:
      throw badRequest(`Modifier :${ctx.modifier} is not allowed on string parameter ${ctx.param.code}`, ctx.name);
  }
}

function tokenValue(ctx: ValueContext, value: string): Disjunction {
  if (ctx.modifier === 'text') {
    return [{ x: { $regex: `(^|\\s)${escapeRegex(indexText(normalizeText(unescapeValue(value))))}` } }];
  }
  const parts = splitEscaped(value, '|').map(unescapeValue);
  if (ctx.modifier === 'of-type') {
    if (parts.length !== 3) throw malformed(ctx, value, ':of-type takes "type-system|type-code|value"');
    return [{ ot: parts.join('|') }];
  }
  if (ctx.modifier !== undefined && ctx.modifier !== 'not') {
    throw notSupported(`Modifier :${ctx.modifier} is not supported on token parameter ${ctx.param.code}`, ctx.name);
  }
  if (parts.length === 1) return [{ c: parts[0] }];
  if (parts.length !== 2) throw malformed(ctx, value, 'a token is [system|]code');
  const [system, code] = parts;
  if (!code) return [{ s: system }];
  return [{ sc: `${system}|${code}` }];
}

const RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

function referenceValue(ctx: ValueContext, value: string): Disjunction {
  let text = unescapeValue(value);
  if (ctx.modifier === 'identifier') {
    const parts = splitEscaped(value, '|').map(unescapeValue);
    if (parts.length === 1) return [{ ident: { $regex: `\\|${escapeRegex(parts[0])}$` } }];
    if (parts.length !== 2) throw malformed(ctx, value, ':identifier takes [system|]value');
    return [{ ident: `${parts[0]}|${parts[1]}` }];
  }
  const typeModifier = ctx.modifier && /^[A-Z]/.test(ctx.modifier) ? ctx.modifier : undefined;
  if (ctx.modifier !== undefined && !typeModifier) {
    throw notSupported(`Modifier :${ctx.modifier} is not supported on reference parameter ${ctx.param.code}`, ctx.name);
  }
  if (text.startsWith(`${ctx.baseUrl}/`)) text = text.slice(ctx.baseUrl.length + 1);
  const relative = RELATIVE.exec(text);
  if (relative) {
    if (typeModifier && relative[1] !== typeModifier) return [];
    return [{ r: `${relative[1]}/${relative[2]}` }];
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(text)) {
    const [url, version] = text.split('|');
    return version ? [{ u: url, uv: version }] : [{ u: url }];
  }
  if (!ID.test(text)) throw malformed(ctx, value, 'expected Type/id, an id or an absolute URL');
  const targets = typeModifier ? [typeModifier] : ctx.param.target;
  if (targets.length === 1) return [{ r: `${targets[0]}/${text}` }];
  return [{ i: text }];
}

/** Value conditions on one numeric field for a prefix, given the implicit range [low, high). */
function numericRange(field: string, prefix: Prefix, n: number, low: number, high: number): Disjunction {
  switch (prefix) {
    case 'eq':
      return [{ [field]: { $gte: low, $lt: high } }];
    case 'ne':
      return [{ [field]: { $lt: low } }, { [field]: { $gte: high } }];
    case 'gt':
    case 'sa':
      return [{ [field]: { $gt: n } }];
    case 'lt':
    case 'eb':
      return [{ [field]: { $lt: n } }];
    case 'ge':
      return [{ [field]: { $gte: n } }];
    case 'le':
      return [{ [field]: { $lte: n } }];
    case 'ap': {
      // "approximately": within 10% of the value (the spec suggests 10%, as HAPI does).
      const margin = Math.abs(n) * 0.1;
      return [{ [field]: { $gte: n - margin, $lte: n + margin } }];
    }
  }
}

/** The implicit precision of a decimal search value: "100" is [99.5, 100.5) (R4 search, number). */
function precisionRange(text: string, n: number): [number, number] {
  const mantissa = text.toLowerCase().split('e')[0];
  const decimals = mantissa.includes('.') ? mantissa.length - mantissa.indexOf('.') - 1 : 0;
  const exponent = text.toLowerCase().includes('e') ? Number(text.toLowerCase().split('e')[1]) : 0;
  const half = 0.5 * Math.pow(10, exponent - decimals);
  return [n - half, n + half];
}

function parseNumber(ctx: ValueContext, value: string): { prefix: Prefix; n: number; text: string } {
  const { prefix, rest } = splitPrefix(value);
  const n = Number(rest);
  if (rest.trim() === '' || !Number.isFinite(n) || !/^[-+]?\d*\.?\d+(e[-+]?\d+)?$/i.test(rest)) {
    throw malformed(ctx, value, 'not a number');
  }
  return { prefix, n, text: rest };
}

function numberValue(ctx: ValueContext, value: string): Disjunction {
  const { prefix, n, text } = parseNumber(ctx, value);
  const [low, high] = precisionRange(text, n);
  return numericRange('v', prefix, n, low, high);
}

function quantityValue(ctx: ValueContext, value: string): Disjunction {
  const parts = splitEscaped(value, '|').map(unescapeValue);
  if (parts.length !== 1 && parts.length !== 3) throw malformed(ctx, value, 'a quantity is number[|system|code]');
  const { prefix, n, text } = parseNumber(ctx, parts[0]);
  const [low, high] = precisionRange(text, n);
  const [, system, code] = parts;
  if (system === UCUM && code) {
    const canonical = canonicalQuantity(1, code);
    if (canonical) {
      const f = canonical.value;
      const scale = (x: number) => Number((x * f).toPrecision(12));
      return numericRange('cv', prefix, scale(n), scale(low), scale(high)).map((c) => ({ ...c, cc: canonical.code }));
    }
  }
  const values = numericRange('v', prefix, n, low, high);
  if (!code) return values;
  const units: Conjunction[] = system ? [{ s: system, c: code }] : [{ c: code }, { u: code }];
  return values.flatMap((v) => units.map((u) => ({ ...v, ...u })));
}

/**
 * Date prefixes against a stored range [lo, hi) and a search range [S, E) (R4 search, "date"):
 * eq: the search range contains the value; gt/lt: the value extends above/below the search range;
 * ge/le: gt/lt or eq; sa/eb: the value starts after / ends before; ap: the ranges overlap once the
 * search range is widened by 10% of its distance from now.
 */
export function dateConditions(prefix: Prefix, start: Date, end: Date, now: Date): Disjunction {
  switch (prefix) {
    case 'eq':
      return [{ lo: { $gte: start }, hi: { $lte: end } }];
    case 'ne':
      return [{ lo: { $lt: start } }, { hi: { $gt: end } }];
    case 'gt':
      return [{ hi: { $gt: end } }];
    case 'lt':
      return [{ lo: { $lt: start } }];
    case 'ge':
      return [{ hi: { $gt: end } }, { lo: { $gte: start } }];
    case 'le':
      return [{ lo: { $lt: start } }, { hi: { $lte: end } }];
    case 'sa':
      return [{ lo: { $gte: end } }];
    case 'eb':
      return [{ hi: { $lte: start } }];
    case 'ap': {
      const margin = Math.abs(now.getTime() - start.getTime()) * 0.1;
      return [{ lo: { $lt: new Date(end.getTime() + margin) }, hi: { $gt: new Date(start.getTime() - margin) } }];
    }
  }
}

export function parseDateValue(ctx: ValueContext, value: string): { prefix: Prefix; start: Date; end: Date } {
  const { prefix, rest } = splitPrefix(value);
  // An unencoded "+" in a time zone arrives as a space from form/query decoding (HAPI accepts it too).
  const range = parseDateRange(rest.replace(/ (\d{2}:\d{2})$/, '+$1'));
  if (!range) throw malformed(ctx, value, 'not a FHIR date, dateTime or instant');
  return { prefix, start: range.start, end: range.end };
}

function dateValue(ctx: ValueContext, value: string): Disjunction {
  const { prefix, start, end } = parseDateValue(ctx, value);
  return dateConditions(prefix, start, end, ctx.now);
}

function uriValue(ctx: ValueContext, value: string): Disjunction {
  const text = unescapeValue(value);
  switch (ctx.modifier) {
    case undefined:
      return [{ u: text }];
    case 'below':
      return [{ u: { $regex: `^${escapeRegex(indexText(text))}` } }];
    case 'above': {
      // Every ancestor path of the value, itself included: "http://a/b/c" -> "http://a/b", ...
      const ancestors: string[] = [];
      for (let at = text.length; at > 0; at = text.lastIndexOf('/', at - 1)) ancestors.push(text.slice(0, at));
      return [{ u: { $in: ancestors.filter((a) => !a.endsWith(':') && !a.endsWith('/')) } }];
    }
    default:
      throw badRequest(`Modifier :${ctx.modifier} is not allowed on uri parameter ${ctx.param.code}`, ctx.name);
  }
}

export type ComponentLookup = (definition: string) => SearchParam | undefined;

function compositeValue(ctx: ValueContext, value: string, lookup: ComponentLookup): Disjunction {
  const parts = splitEscaped(value, '$');
  if (parts.length !== ctx.param.components.length) {
    throw malformed(ctx, value, `expected ${ctx.param.components.length} components separated by $`);
  }
  let result: Disjunction = [{}];
  for (const [index, component] of ctx.param.components.entries()) {
    const param = lookup(component.definition);
    if (!param) throw notSupported(`Composite parameter ${ctx.param.code} has an unknown component`, ctx.name);
    const alternatives = compileValue({ ...ctx, param, modifier: undefined }, parts[index], lookup).map((c) =>
      prefixKeys(c, `k${index}`),
    );
    result = result.flatMap((left) => alternatives.map((right) => ({ ...left, ...right })));
  }
  return result;
}

const COMPILERS: Partial<Record<ParamType, (ctx: ValueContext, value: string) => Disjunction>> = {
  string: stringValue,
  token: tokenValue,
  reference: referenceValue,
  number: numberValue,
  quantity: quantityValue,
  date: dateValue,
  uri: uriValue,
};

/** One comma-separated alternative of a parameter, as conditions on the stored values' fields. */
export function compileValue(ctx: ValueContext, value: string, lookup: ComponentLookup): Disjunction {
  if (ctx.param.type === 'composite') return compositeValue(ctx, value, lookup);
  const compiler = COMPILERS[ctx.param.type];
  if (!compiler) throw notSupported(`Search parameters of type ${ctx.param.type} are not supported`, ctx.name);
  if (
    ctx.modifier !== undefined &&
    ['number', 'quantity', 'date'].includes(ctx.param.type) &&
    ctx.modifier !== 'missing'
  ) {
    throw badRequest(
      `Modifier :${ctx.modifier} is not allowed on ${ctx.param.type} parameter ${ctx.param.code}`,
      ctx.name,
    );
  }
  return compiler(ctx, value);
}
