import type { SearchParameter } from '@medplum/fhirtypes';
import { loadR4Bundle, resourceTypes } from '../fhir/definitions';
import { SERVER_SEARCH_PARAMETERS } from './server-parameters';

export type ParamType = NonNullable<SearchParameter['type']>;

/** Whether a parameter may be used in searches: runtime ones wait for their reindex (reindex.ts). */
export type ParamStatus = 'active' | 'reindexing';

export interface SearchParam {
  code: string;
  type: ParamType;
  url?: string;
  base: string[];
  expression?: string;
  /** Resource types a reference parameter may point to. */
  target: string[];
  components: { definition: string; expression: string }[];
  status: ParamStatus;
  /** R4 definitions are fixed; runtime ones come from stored SearchParameter resources. */
  origin: 'r4' | 'runtime';
  /** Reindex progress for runtime parameters: documents done / total. */
  progress?: { done: number; total: number };
  definition: SearchParameter;
}

/** The per-type FHIRPath of a parameter, with `resolve() is X` filters taken out (see typeExpression). */
export interface TypeExpression {
  expression: string;
  /** Reference types kept when the spec's expression filters with `where(resolve() is X)`. */
  referenceTypes?: string[];
}

/** Parameters every type has that are answered from document fields, not from `sp` (see compile). */
export const BUILT_IN = new Set(['_id', '_lastUpdated']);

/**
 * The search parameters of every resource type: the R4 definitions (search-parameters.json), plus the
 * SearchParameter resources created at runtime. The one place that answers "what does `code` mean on
 * `type`", for extraction (write time) and for query compilation (search time).
 */
export class SearchParameterRegistry {
  private readonly byType = new Map<string, Map<string, SearchParam>>();
  private readonly byUrl = new Map<string, SearchParam>();
  private readonly expressions = new Map<string, TypeExpression | null>();

  constructor(definitions?: SearchParameter[]) {
    const list =
      definitions ??
      (loadR4Bundle('search-parameters.json').entry ?? []).map((entry) => entry.resource as SearchParameter);
    for (const definition of list) this.register(definition, 'active', 'r4');
    // Fixed like the specification's: a runtime SearchParameter may not take their codes either.
    if (!definitions) for (const definition of SERVER_SEARCH_PARAMETERS) this.register(definition, 'active', 'r4');
  }

  /**
   * A runtime SearchParameter: extracted from every write at once, searchable only once reindex()
   * has walked the existing resources and marked it active.
   */
  add(definition: SearchParameter): SearchParam {
    return this.register(definition, 'reindexing', 'runtime');
  }

  /** A runtime SearchParameter whose reindex finished in an earlier run (see ReindexLog). */
  addActive(definition: SearchParameter): SearchParam {
    return this.register(definition, 'active', 'runtime');
  }

  /**
   * Why a runtime definition may not be registered: it would replace a parameter of the specification
   * (same url, or same code on one of its types) or another runtime parameter's code on a shared type.
   * A new version of the same runtime parameter (same url) replaces its old self and is no conflict.
   */
  conflictOf(definition: SearchParameter): string | undefined {
    const sameUrl = definition.url ? this.byUrl.get(definition.url) : undefined;
    if (sameUrl?.origin === 'r4') return `${definition.url} is a SearchParameter of the FHIR specification`;
    for (const type of expandBases(definition.base ?? [])) {
      const existing = this.byType.get(type)?.get(definition.code ?? '');
      if (existing && existing !== sameUrl) {
        const owner = existing.origin === 'r4' ? 'the FHIR specification' : existing.url;
        return `${type} already has the search parameter "${definition.code}" (${owner})`;
      }
    }
    return undefined;
  }

  /** A deleted runtime SearchParameter: no longer searchable nor extracted (R4 definitions stay). */
  remove(url: string): void {
    const param = this.byUrl.get(url);
    if (!param || param.origin === 'r4') return;
    this.byUrl.delete(url);
    for (const [type, params] of this.byType) {
      if (params.get(param.code) === param) {
        params.delete(param.code);
        this.expressions.delete(`${type}|${param.code}`);
      }
    }
  }

  /** The parameter `code` of `type`, if it exists and (unless `includePending`) is searchable. */
  get(type: string, code: string, includePending = false): SearchParam | undefined {
    const param = this.byType.get(type)?.get(code);
    if (!param || (param.status !== 'active' && !includePending)) return undefined;
    return param;
  }

  /** Every parameter of `type` (those being reindexed too: writes must index them). */
  forType(type: string): SearchParam[] {
    return [...(this.byType.get(type)?.values() ?? [])];
  }

  byDefinitionUrl(url: string): SearchParam | undefined {
    return this.byUrl.get(url);
  }

  setStatus(param: SearchParam, status: ParamStatus, progress?: { done: number; total: number }): void {
    param.status = status;
    if (progress) param.progress = progress;
  }

  /**
   * The part of a parameter's expression that applies to `type`. Shared parameters list one path per
   * base type ("AllergyIntolerance.patient | CarePlan.subject..."): evaluating only this type's part is
   * both faster and avoids compiling paths of other types. `resolve()` needs the target resource, which
   * extraction does not have, so `where(resolve() is X)` becomes a check on the reference's type.
   */
  typeExpression(type: string, param: SearchParam): TypeExpression | undefined {
    const key = `${type}|${param.code}`;
    const cached = this.expressions.get(key);
    if (cached !== undefined) return cached ?? undefined;
    let result: TypeExpression | null = null;
    if (param.expression) {
      const referenceTypes = new Set<string>();
      const parts = splitUnion(param.expression)
        .map((part) => part.trim())
        .filter((part) => {
          const head = part.replace(/^\(+/, '');
          return (
            head === type ||
            head.startsWith(`${type}.`) ||
            head.startsWith('Resource.') ||
            head.startsWith('DomainResource.') ||
            !/^[A-Z]/.test(head)
          );
        })
        .map((part) =>
          part
            .replace(/(^|\()(Resource|DomainResource)\./g, `$1${type}.`)
            .replace(/\.where\(resolve\(\) is ([A-Za-z]+)\)/g, (_m, target: string) => {
              referenceTypes.add(target);
              return '';
            }),
        );
      if (parts.length) {
        result = { expression: parts.join(' | ') };
        if (referenceTypes.size) result.referenceTypes = [...referenceTypes];
      }
    }
    this.expressions.set(key, result);
    return result ?? undefined;
  }

  private register(definition: SearchParameter, status: ParamStatus, origin: SearchParam['origin']): SearchParam {
    // A new version of a runtime parameter may change its code or bases: the old entries must go.
    if (origin === 'runtime' && definition.url) this.remove(definition.url);
    const param: SearchParam = {
      code: definition.code ?? '',
      type: definition.type ?? 'special',
      url: definition.url,
      base: [...(definition.base ?? [])],
      expression: definition.expression,
      target: [...(definition.target ?? [])],
      components: (definition.component ?? []).map((c) => ({
        definition: c.definition ?? '',
        expression: c.expression ?? '',
      })),
      status,
      origin,
      definition,
    };
    for (const type of expandBases(param.base)) {
      let map = this.byType.get(type);
      if (!map) this.byType.set(type, (map = new Map()));
      map.set(param.code, param);
      this.expressions.delete(`${type}|${param.code}`);
    }
    if (param.url) this.byUrl.set(param.url, param);
    return param;
  }
}

/** The resource types a SearchParameter.base list covers ("Resource" and "DomainResource" mean all). */
export function expandBases(bases: string[]): string[] {
  return bases.flatMap((b) => (b === 'Resource' || b === 'DomainResource' ? resourceTypes() : [b]));
}

/** Splits a FHIRPath union at its top level (not inside parentheses or strings). */
function splitUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const ch = expression[i];
    if (ch === "'" && expression[i - 1] !== '\\') quoted = !quoted;
    else if (quoted) continue;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '|' && depth === 0) {
      parts.push(expression.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(expression.slice(start));
  return parts;
}
