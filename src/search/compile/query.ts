import type { Db } from 'mongodb';
import { directReader, type Reader } from '../../store/read-view';
import { badRequest, FhirError, notSupported } from '../../fhir/outcome';
import type { CurrentDocument } from '../../store/documents';
import { indexText, ownValue, valuePath } from '../keys';
import { parseNameModifier, splitEscaped, unescapeValue, type ParsedParam } from '../parse';
import type { SearchParam, SearchParameterRegistry } from '../registry';
import {
  allOf,
  anyOf,
  asFilter,
  NOTHING,
  onElement,
  type Conjunction,
  type Disjunction,
  type MongoFilter,
} from './element';
import { combineDateWindows } from './date-ranges';
import { valueSetConditions } from './valueset';
import { compileValue, dateConditions, parseDateValue, type ValueContext } from './values';

export interface CompileContext {
  db: Db;
  /** Inner queries (chains, _has) read through it, so they see whole commits as the outer search does. */
  reader?: Reader;
  registry: SearchParameterRegistry;
  baseUrl: string;
  now: Date;
  lenient: boolean;
  /** Whether the engine has $elemMatch on sub-documents (MongoDB does, FerretDB 1.24 does not). */
  elemMatch: boolean;
  /** Parameters left out in lenient mode, with the reason (reported in an OperationOutcome). */
  ignored: { name: string; reason: string }[];
  /** Whether stored date values carry their span marker, so date windows may be split on it (date-ranges.ts). */
  dateSpans?: boolean;
}

function readerOf(ctx: CompileContext): Reader {
  return ctx.reader ?? directReader(ctx.db);
}

/** Most ids a chained or _has inner query may resolve to before the search is refused as too costly. */
export const INNER_LIMIT = 10_000;

/** Live documents only: a deleted resource never matches (its document keeps the last live version). */
export const LIVE: MongoFilter = { deleted: { $ne: true } };

/** The MongoDB filter for a type-level search: all parameters ANDed (a repeated parameter is AND). */
export async function compileFilter(ctx: CompileContext, type: string, params: ParsedParam[]): Promise<MongoFilter> {
  const filters: MongoFilter[] = [LIVE];
  const windows = ctx.dateSpans ? combineDateWindows(ctx, type, params) : { filters: [], rest: params };
  filters.push(...windows.filters);
  for (const param of windows.rest) {
    try {
      filters.push(await compileParam(ctx, type, param));
    } catch (error) {
      if (!ctx.lenient || !(error instanceof FhirError) || error.status !== 400) throw error;
      ctx.ignored.push({ name: param.name, reason: error.message });
    }
  }
  return allOf(filters);
}

function unknownParam(type: string, name: string): FhirError {
  return badRequest(`Unknown search parameter "${name}" for resource type ${type}`, name);
}

export async function compileParam(ctx: CompileContext, type: string, param: ParsedParam): Promise<MongoFilter> {
  if (param.code === '_has') return compileHas(ctx, type, param);
  if (param.code === '_id') return compileId(param);
  if (param.code === '_lastUpdated') return compileLastUpdated(ctx, param);
  const definition = ctx.registry.get(type, param.code);
  if (!definition) {
    if (ctx.registry.get(type, param.code, true)) {
      throw badRequest(`Search parameter ${param.code} is being reindexed and cannot be used yet`, param.name);
    }
    throw unknownParam(type, param.name);
  }
  const path = valuePath(definition.code);
  if (param.modifier === 'missing') {
    if (param.raw !== 'true' && param.raw !== 'false') throw badRequest(`:missing takes true or false`, param.name);
    return { [path]: { $exists: param.raw === 'false' } };
  }
  if (param.chain !== undefined) return compileChain(ctx, type, definition, param);
  const valueContext: ValueContext = {
    param: definition,
    baseUrl: ctx.baseUrl,
    now: ctx.now,
    name: param.name,
  };
  if (param.modifier !== undefined) valueContext.modifier = param.modifier;
  const lookup = (url: string) => ctx.registry.byDefinitionUrl(url);
  const alternatives: Disjunction = [];
  for (const value of param.values) {
    if (value === '') throw badRequest(`Empty value for ${param.name}`, param.name);
    if (definition.type === 'token' && (param.modifier === 'in' || param.modifier === 'not-in')) {
      alternatives.push(...(await valueSetConditions(ctx.db, unescapeValue(value), param.name)));
    } else alternatives.push(...compileValue(valueContext, value, lookup));
  }
  const matched = alternatives.length
    ? anyOf(alternatives.map((c: Conjunction) => onElement(path, boundedConjunction(c), ctx.elemMatch)))
    : NOTHING;
  // :not and :not-in also match resources with no value at all (R4 search, token :not).
  if (param.modifier === 'not' || param.modifier === 'not-in') return { $nor: [matched] };
  return matched;
}

/** Strings compared with stored values are cut as the stored ones were (see INDEX_VALUE_MAX_LENGTH). */
function boundedConjunction(conjunction: Conjunction): Conjunction {
  const bound = (value: unknown): unknown => {
    if (typeof value === 'string') return indexText(value);
    if (value !== null && typeof value === 'object' && Array.isArray((value as { $in?: unknown }).$in)) {
      return { ...value, $in: (value as { $in: unknown[] }).$in.map(bound) };
    }
    return value;
  };
  return Object.fromEntries(Object.entries(conjunction).map(([field, value]) => [field, bound(value)]));
}

function compileId(param: ParsedParam): MongoFilter {
  if (param.modifier !== undefined)
    throw notSupported(`Modifier :${param.modifier} is not supported on _id`, param.name);
  const ids = param.values.map(unescapeValue);
  return ids.length === 1 ? { _id: ids[0] } : { _id: { $in: ids } };
}

/**
 * _lastUpdated compares the document's `ts` (an instant, i.e. the range [ts, ts + 1ms)): a condition
 * on the range's exclusive end `hi` becomes one on ts shifted by a millisecond.
 */
function compileLastUpdated(ctx: CompileContext, param: ParsedParam): MongoFilter {
  if (param.modifier !== undefined)
    throw badRequest(`Modifier :${param.modifier} is not allowed on _lastUpdated`, param.name);
  const valueContext = { name: param.name } as ValueContext;
  const alternatives = param.values.flatMap((value) => {
    const { prefix, start, end } = parseDateValue(valueContext, value);
    return dateConditions(prefix, start, end, ctx.now).map((conjunction) => {
      const ts: Record<string, Date> = {};
      for (const [field, condition] of Object.entries(conjunction)) {
        for (const [op, date] of Object.entries(condition as Record<string, Date>)) {
          ts[op] = field === 'hi' ? new Date(date.getTime() - 1) : date;
        }
      }
      return { ts } as MongoFilter;
    });
  });
  return anyOf(alternatives);
}

async function idsOf(ctx: CompileContext, type: string, filter: MongoFilter, name: string): Promise<string[]> {
  const docs = await readerOf(ctx).find<CurrentDocument>(type, asFilter(filter), {
    projection: { _id: 1 },
    limit: INNER_LIMIT + 1,
  });
  if (docs.length > INNER_LIMIT) {
    throw badRequest(`${name} matches more than ${INNER_LIMIT} ${type} resources; narrow it down`, name);
  }
  return docs.map((d) => d._id);
}

/**
 * Chaining (`subject:Patient.name=x`, several levels): the inner search runs first and yields ids,
 * then the outer filter is an `$in` on the reference, which an index on `sp.<param>.r` answers.
 */
async function compileChain(
  ctx: CompileContext,
  type: string,
  definition: SearchParam,
  param: ParsedParam,
): Promise<MongoFilter> {
  if (definition.type !== 'reference')
    throw badRequest(`${param.code} is not a reference and cannot be chained`, param.name);
  const chain = param.chain ?? '';
  const innerCode = parseNameModifier(chain).code;
  let targets = param.modifier ? [param.modifier] : definition.target;
  if (param.modifier && !definition.target.includes(param.modifier)) {
    throw badRequest(`${param.code} cannot refer to ${param.modifier}`, param.name);
  }
  if (targets.length > 1)
    targets = targets.filter(
      (t) => innerCode === '_has' || ctx.registry.get(t, innerCode) || innerCode.startsWith('_'),
    );
  if (!targets.length) throw unknownParam(definition.target.join('|'), chain);
  const references: string[] = [];
  for (const target of targets) {
    const inner: ParsedParam = { name: chain, ...parseNameModifier(chain), values: param.values, raw: param.raw };
    if (inner.code.startsWith('_has')) inner.code = '_has';
    // An inner failure must fail the whole parameter, so the inner context is never lenient.
    const filter = await compileFilter({ ...ctx, lenient: false, ignored: [] }, target, [inner]);
    for (const id of await idsOf(ctx, target, filter, param.name)) references.push(`${target}/${id}`);
  }
  return references.length ? { [`${valuePath(definition.code)}.r`]: { $in: references } } : NOTHING;
}

/**
 * Reverse chaining (`_has:MedicationDispense:prescription:status=completed`): the resources of the
 * other type that match, then the ids they refer to in this type.
 */
async function compileHas(ctx: CompileContext, type: string, param: ParsedParam): Promise<MongoFilter> {
  const [, otherType, referenceCode, ...rest] = param.name.split(':');
  const innerName = rest.join(':');
  if (!otherType || !referenceCode || !innerName) {
    throw badRequest(`_has must be _has:Type:reference:parameter, not ${param.name}`, param.name);
  }
  const reference = ctx.registry.get(otherType, referenceCode);
  if (!reference || reference.type !== 'reference') throw unknownParam(otherType, referenceCode);
  const inner: ParsedParam = {
    name: innerName,
    ...parseNameModifier(innerName),
    values: innerName.startsWith('_has') ? [param.raw] : splitEscaped(param.raw, ','),
    raw: param.raw,
  };
  if (innerName.startsWith('_has')) inner.code = '_has';
  const filter = await compileFilter({ ...ctx, lenient: false, ignored: [] }, otherType, [inner]);
  const path = valuePath(referenceCode);
  const docs = await readerOf(ctx).find<CurrentDocument>(otherType, asFilter(filter), {
    projection: { [path]: 1 },
    limit: INNER_LIMIT + 1,
  });
  if (docs.length > INNER_LIMIT)
    throw badRequest(`${param.name} matches more than ${INNER_LIMIT} resources`, param.name);
  const ids = new Set<string>();
  for (const doc of docs) {
    const stored = ownValue(doc.sp, path.slice(3));
    for (const element of Array.isArray(stored) ? stored : stored ? [stored] : []) {
      const r = (element as { r?: string }).r;
      if (r?.startsWith(`${type}/`)) ids.add(r.slice(type.length + 1));
    }
  }
  return ids.size ? { _id: { $in: [...ids] } } : NOTHING;
}
