import { badRequest } from '../fhir/outcome';

/** A search parameter as written in the request: `code[:modifier][.chain]=value,value`. */
export interface ParsedParam {
  /** The name as written (for the self link and error messages). */
  name: string;
  code: string;
  modifier?: string;
  /** The rest of a chained name (`subject:Patient.name` -> "name"). */
  chain?: string;
  /** The comma-separated alternatives, still escaped (split with splitEscaped, then unescape). */
  values: string[];
  /** The value as written. */
  raw: string;
}

export interface SortKey {
  code: string;
  descending: boolean;
}

export interface IncludeSpec {
  /** "_include" or "_revinclude" */
  kind: 'include' | 'revinclude';
  sourceType: string;
  /** The reference parameter, or "*" for all of them. */
  param: string;
  targetType?: string;
  iterate: boolean;
  raw: string;
}

export type SummaryMode = 'true' | 'false' | 'count' | 'data' | 'text';
export type TotalMode = 'none' | 'estimate' | 'accurate';

/** Result parameters (R4 search, "Modifying search results") and the parameters to match on. */
export interface ParsedSearch {
  params: ParsedParam[];
  sort: SortKey[];
  count?: number;
  total?: TotalMode;
  summary?: SummaryMode;
  elements?: string[];
  includes: IncludeSpec[];
  types?: string[];
  cursor?: string;
  /** The applied parameters as [name, value] in request order, for the self link and cursor binding. */
  applied: [string, string][];
  /** Ignored parameters and why (reported in lenient mode; thrown otherwise). */
  ignored: { name: string; reason: string }[];
}

/** Paging token parameter of our next/previous links. */
export const CURSOR_PARAM = '_cursor';

/** Parameters that change nothing here and are accepted silently (the HTTP layer handles format). */
const IGNORED_SILENTLY = new Set(['_format', '_pretty']);
/** Spec parameters this server does not implement: 400, or ignored and reported when lenient. */
export const UNSUPPORTED_PARAMETERS = new Set([
  '_contained',
  '_containedType',
  '_text',
  '_content',
  '_list',
  '_query',
  '_filter',
]);

/** Splits on `separator` where it is not escaped with a backslash; escapes are kept for later splits. */
export function splitEscaped(value: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\' && i + 1 < value.length) {
      current += ch + value[i + 1];
      i++;
    } else if (ch === separator) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

/** Removes the search escapes `\,` `\|` `\$` `\\` (R4 search, "Escaping Search Parameters"). */
export function unescapeValue(value: string): string {
  return value.replace(/\\([,|$\\])/g, '$1');
}

export function parseNameModifier(name: string): { code: string; modifier?: string; chain?: string } {
  const dot = name.indexOf('.');
  const head = dot >= 0 ? name.slice(0, dot) : name;
  const chain = dot >= 0 ? name.slice(dot + 1) : undefined;
  const colon = head.indexOf(':');
  const result: { code: string; modifier?: string; chain?: string } = {
    code: colon >= 0 ? head.slice(0, colon) : head,
  };
  if (colon >= 0) result.modifier = head.slice(colon + 1);
  if (chain !== undefined) result.chain = chain;
  return result;
}

export function parseIncludeValue(kind: 'include' | 'revinclude', raw: string, iterate: boolean): IncludeSpec {
  if (raw === '*') return { kind, sourceType: '*', param: '*', iterate, raw };
  const [sourceType, param, targetType, extra] = raw.split(':');
  if (!sourceType || !param || extra !== undefined) {
    throw badRequest(`_${kind} must be "SourceType:parameter[:TargetType]", not "${raw}"`, `_${kind}`);
  }
  const spec: IncludeSpec = { kind, sourceType, param, iterate, raw };
  if (targetType) spec.targetType = targetType;
  return spec;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw badRequest(`${name} must be one of ${allowed.join(', ')}, not "${value}"`, name);
  }
  return value as T;
}

/**
 * Reads the query into result parameters and match parameters. Malformed result parameters throw 400
 * even in lenient mode (the spec's lenient handling is about unknown parameters).
 */
export function parseSearch(query: Iterable<[string, string]>): ParsedSearch {
  const parsed: ParsedSearch = { params: [], sort: [], includes: [], applied: [], ignored: [] };
  for (const [name, value] of query) {
    const { code, modifier } = parseNameModifier(name);
    if (IGNORED_SILENTLY.has(name)) continue;
    if (name === CURSOR_PARAM) {
      parsed.cursor = value;
      continue;
    }
    if (UNSUPPORTED_PARAMETERS.has(code)) {
      parsed.ignored.push({ name, reason: `The parameter ${name} is not supported` });
      continue;
    }
    switch (code) {
      case '_sort':
        parsed.sort = value
          .split(',')
          .filter(Boolean)
          .map((key) => ({ code: key.replace(/^-/, ''), descending: key.startsWith('-') }));
        break;
      case '_count': {
        const n = Number(value);
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
          throw badRequest(`_count must be a whole number`, '_count');
        parsed.count = n;
        break;
      }
      case '_total':
        parsed.total = oneOf('_total', value, ['none', 'estimate', 'accurate'] as const);
        break;
      case '_summary':
        parsed.summary = oneOf('_summary', value, ['true', 'false', 'count', 'data', 'text'] as const);
        break;
      case '_elements':
        parsed.elements = value
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean);
        break;
      case '_include':
      case '_revinclude': {
        if (modifier && modifier !== 'iterate' && modifier !== 'recurse') {
          throw badRequest(`Unknown modifier :${modifier} on ${code}`, name);
        }
        parsed.includes.push(
          parseIncludeValue(code === '_include' ? 'include' : 'revinclude', value, modifier !== undefined),
        );
        break;
      }
      case '_type':
        parsed.types = [...(parsed.types ?? []), ...value.split(',').filter(Boolean)];
        break;
      default: {
        if (code.startsWith('_has')) {
          parsed.params.push({ name, code: '_has', values: [value], raw: value });
          break;
        }
        const p = parseNameModifier(name);
        parsed.params.push({ name, ...p, values: splitEscaped(value, ','), raw: value });
        break; // dropped from `applied` again if compiling it fails in lenient mode
      }
    }
    parsed.applied.push([name, value]);
  }
  return parsed;
}
