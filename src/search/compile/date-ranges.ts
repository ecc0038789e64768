import { SHORT_SPAN_MS, SPAN_KEY, valuePath, WIDE } from '../keys';
import { indexedDateValuePaths } from '../indexes';
import type { ParsedParam } from '../parse';
import { anyOf, type MongoFilter } from './element';
import { dateConditions, parseDateValue, type ValueContext } from './values';
import type { CompileContext } from './query';

type Bounds = Record<string, Date>;
/** Single-field conditions on one date parameter's stored values, by field (`lo`, `hi`, `span`). */
type Conditions = Record<string, Bounds | string>;

const LOWER = ['$gt', '$gte'];
const UPPER = ['$lt', '$lte'];

/**
 * A window such as `date=ge2025-07-01&date=lt2025-08-01` compiles, one parameter at a time, to
 * `(hi > 07-02 or lo >= 07-01) and lo < 08-01`: every condition is one-sided, so at scale no index
 * bounds it and the engine checks every value of the other conditions (all the Observations of a code).
 * ANDed together and distributed, the window is `(lo >= 07-01 and lo < 08-01) or (hi > 07-02 and lo <
 * 08-01)`, and the second half splits on the span marker (keys.ts, SPAN_KEY): a value no longer than a
 * day with `hi > X` starts after `X - 1 day`, so it is `lo` in a bounded range too, and only values
 * marked wide (months, years, long Periods: few) are looked up by the marker.
 *
 * The result is the same filter: each condition stays on the parameter's values as the separate
 * parameters put it (any value may satisfy each one, as MongoDB reads conditions on an array), and a
 * split adds only conditions that the values it keeps satisfy. Used for the parameters whose `lo` is
 * indexed (search/indexes.ts), once stored values carry the marker (date-spans.ts); any parameter
 * with a modifier, several values, or a condition on two fields of one value (eq, ap) is left as is.
 */
export function combineDateWindows(
  ctx: CompileContext,
  type: string,
  params: ParsedParam[],
): { filters: MongoFilter[]; rest: ParsedParam[] } {
  const indexed = new Set(indexedDateValuePaths(type));
  const groups = new Map<string, { param: ParsedParam; alternatives: Conditions[] }[]>();
  const rest: ParsedParam[] = [];
  for (const param of params) {
    const alternatives = indexed.size ? windowConditions(ctx, type, param, indexed) : undefined;
    if (!alternatives) {
      rest.push(param);
      continue;
    }
    const path = valuePath(param.code);
    groups.set(path, [...(groups.get(path) ?? []), { param, alternatives }]);
  }
  const filters: MongoFilter[] = [];
  for (const [path, members] of groups) {
    if (members.length < 2) {
      rest.push(...members.map((m) => m.param));
      continue;
    }
    const conjunctions = members.reduce<Conditions[]>(
      (product, member) => product.flatMap((c) => member.alternatives.map((a) => merged(c, a))),
      [{}],
    );
    filters.push(anyOf(withoutImplied(conjunctions.flatMap(bySpan)).map((c) => onValues(path, c))));
  }
  return { filters, rest };
}

/** The parameter's alternatives, each a single-field condition, or undefined when it is not such a one. */
function windowConditions(
  ctx: CompileContext,
  type: string,
  param: ParsedParam,
  indexed: Set<string>,
): Conditions[] | undefined {
  if (param.modifier !== undefined || param.chain !== undefined || param.values.length !== 1) return undefined;
  if (param.code.startsWith('_') || !indexed.has(valuePath(param.code))) return undefined;
  const definition = ctx.registry.get(type, param.code);
  if (definition?.type !== 'date') return undefined;
  let parsed: ReturnType<typeof parseDateValue>;
  try {
    parsed = parseDateValue({ param: definition, name: param.name } as ValueContext, param.values[0]);
  } catch {
    return undefined; // compiled alone, to answer with its own error
  }
  const alternatives = dateConditions(parsed.prefix, parsed.start, parsed.end, ctx.now);
  if (alternatives.some((a) => Object.keys(a).length !== 1)) return undefined;
  return alternatives as Conditions[];
}

/** Both conjunctions; the bounds on one field kept in one operator document. */
function merged(a: Conditions, b: Conditions): Conditions {
  const out: Conditions = { ...a };
  for (const [field, bounds] of Object.entries(b)) {
    const existing = out[field];
    out[field] = typeof existing === 'object' && typeof bounds === 'object' ? tightest(existing, bounds) : bounds;
  }
  return out;
}

function tightest(a: Bounds, b: Bounds): Bounds {
  const out: Bounds = { ...a };
  for (const [op, date] of Object.entries(b)) {
    const kept = out[op];
    if (!kept) out[op] = date;
    else if (LOWER.includes(op)) out[op] = date > kept ? date : kept;
    else out[op] = date < kept ? date : kept;
  }
  return out;
}

/**
 * A conjunction with a lower bound on `hi` and an upper bound on `lo` but none below `lo`: the wide
 * values, and the short ones with the bound `hi` puts on their start.
 */
function bySpan(c: Conditions): Conditions[] {
  const hi = c.hi;
  const lo = c.lo;
  if (typeof hi !== 'object' || typeof lo !== 'object') return [c];
  const hiLower = LOWER.filter((op) => hi[op]);
  if (!hiLower.length || !UPPER.some((op) => lo[op]) || LOWER.some((op) => lo[op])) return [c];
  // hi - lo <= one day, so hi > X means lo > X - 1 day (and hi >= X, lo >= X - 1 day).
  const start: Bounds = {};
  for (const op of hiLower) start[op] = new Date(hi[op].getTime() - SHORT_SPAN_MS);
  // The driving condition first: the engine drives each branch of an `$or` by its first one.
  return [
    { [SPAN_KEY]: WIDE, ...c },
    { lo: { ...start, ...lo }, hi },
  ];
}

/**
 * The alternatives less those another one already covers: at day precision the short values' branch of
 * `ge` (lo > X) lies inside its `lo >= X` branch, and the engine would read the month's values twice.
 * Each condition on an array of values is met by any value on its own, so a conjunction covers another
 * when each of its single-operator conditions follows from one of the other's on the same field.
 */
export function withoutImplied(alternatives: Conditions[]): Conditions[] {
  return alternatives.filter(
    (c, i) => !alternatives.some((other, j) => j !== i && implies(c, other) && (!implies(other, c) || j < i)),
  );
}

/** Whether every value set that satisfies `c` satisfies `other` too. */
function implies(c: Conditions, other: Conditions): boolean {
  return Object.entries(other).every(([field, wanted]) => {
    const held = c[field];
    if (typeof wanted === 'string' || typeof held === 'string') return held === wanted;
    if (held === undefined) return false;
    return Object.entries(wanted).every(([op, bound]) =>
      Object.entries(held).some(([heldOp, heldBound]) => boundImplies(heldOp, heldBound, op, bound)),
    );
  });
}

/** Whether `value heldOp held` implies `value op bound`. */
function boundImplies(heldOp: string, held: Date, op: string, bound: Date): boolean {
  const h = held.getTime();
  const b = bound.getTime();
  if (LOWER.includes(op) !== LOWER.includes(heldOp)) return false;
  const strict = op === '$gt' || op === '$lt';
  const heldStrict = heldOp === '$gt' || heldOp === '$lt';
  const beyond = LOWER.includes(op) ? h - b : b - h;
  return beyond > 0 || (beyond === 0 && (heldStrict || !strict));
}

function onValues(path: string, c: Conditions): MongoFilter {
  const ordered = Object.entries(c).sort(([a], [b]) => rank(a) - rank(b));
  return Object.fromEntries(ordered.map(([field, condition]) => [`${path}.${field}`, condition]));
}

/** The marker, then the start, then the end: the order in which a condition bounds the most. */
function rank(field: string): number {
  return field === SPAN_KEY ? 0 : field === 'lo' ? 1 : 2;
}
