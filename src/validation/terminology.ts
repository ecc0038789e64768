import type {
  CodeSystem,
  CodeSystemConcept,
  ValueSet,
  ValueSetComposeInclude,
  ValueSetExpansionContains,
} from '@medplum/fhirtypes';

/**
 * The codes a value set allows, as Sets for O(1) membership. `codes` holds bare codes (for elements
 * of type `code`, which carry no system); `systemCodes` holds "system|code".
 */
export interface CodeSet {
  readonly url: string;
  readonly codes: ReadonlySet<string>;
  readonly systemCodes: ReadonlySet<string>;
}

/**
 * Value sets and code systems by canonical URL, with a local expander for the simple cases:
 * an `expansion.contains` list, or a `compose` that includes whole code systems (whose concepts we
 * hold), explicit concept lists, and other value sets. Anything else (filters, external systems such
 * as SNOMED CT whose content we do not hold) is "not expandable" and the binding is not checked:
 * we never report a code as wrong when we cannot know.
 */
export class Terminology {
  private readonly valueSets = new Map<string, ValueSet>();
  private readonly codeSystems = new Map<string, CodeSystem>();
  private readonly expanded = new Map<string, CodeSet | null>();

  addValueSet(vs: ValueSet): void {
    if (!vs.url) return;
    this.valueSets.set(vs.url, vs);
    this.expanded.clear(); // another value set may include this one
  }

  addCodeSystem(cs: CodeSystem): void {
    if (!cs.url) return;
    this.codeSystems.set(cs.url, cs);
    this.expanded.clear();
  }

  /** Forgets a value set (a runtime one was deleted); the caller re-adds whatever should take its url. */
  removeValueSet(url: string): void {
    if (this.valueSets.delete(url)) this.expanded.clear();
  }

  removeCodeSystem(url: string): void {
    if (this.codeSystems.delete(url)) this.expanded.clear();
  }

  hasValueSet(url: string): boolean {
    return this.valueSets.has(stripVersion(url));
  }

  /** The expansion of a value set, or undefined when it is unknown or cannot be expanded locally. */
  expand(canonical: string): CodeSet | undefined {
    const url = stripVersion(canonical);
    const cached = this.expanded.get(url);
    if (cached !== undefined) return cached ?? undefined;
    this.expanded.set(url, null); // guards against include cycles
    const result = this.computeExpansion(url);
    this.expanded.set(url, result ?? null);
    return result;
  }

  private computeExpansion(url: string): CodeSet | undefined {
    const vs = this.valueSets.get(url);
    if (!vs) return undefined;
    const pairs: [string, string][] = [];
    if (vs.expansion?.contains?.length) {
      const walk = (items: ValueSetExpansionContains[] | undefined): void => {
        for (const c of items ?? []) {
          if (c.code && c.system) pairs.push([c.system, c.code]);
          walk(c.contains);
        }
      };
      walk(vs.expansion.contains);
    } else {
      if (!vs.compose?.include?.length) return undefined;
      for (const include of vs.compose.include) {
        const included = this.includePairs(include);
        if (!included) return undefined;
        pairs.push(...included);
      }
      if (vs.compose.exclude?.length) {
        const excluded = new Set<string>();
        for (const exclude of vs.compose.exclude) {
          const ex = this.includePairs(exclude);
          if (!ex) return undefined;
          for (const [s, c] of ex) excluded.add(`${s}|${c}`);
        }
        return toCodeSet(
          url,
          pairs.filter(([s, c]) => !excluded.has(`${s}|${c}`)),
        );
      }
    }
    return toCodeSet(url, pairs);
  }

  private includePairs(include: ValueSetComposeInclude): [string, string][] | undefined {
    if (include.filter?.length) return undefined;
    const pairs: [string, string][] = [];
    if (include.system) {
      if (include.concept?.length) {
        for (const c of include.concept) pairs.push([include.system, c.code]);
      } else {
        const cs = this.codeSystems.get(stripVersion(include.system));
        if (!cs?.concept?.length || (cs.content && cs.content !== 'complete')) return undefined;
        collectConcepts(cs.concept, include.system, pairs);
      }
    }
    for (const other of include.valueSet ?? []) {
      const set = this.expand(other);
      if (!set) return undefined;
      if (include.system) {
        // system + valueSet means the intersection; keep the pairs of the system that the set allows.
        const allowed = set.systemCodes;
        return pairs.filter(([s, c]) => allowed.has(`${s}|${c}`));
      }
      for (const sc of set.systemCodes) {
        const bar = sc.lastIndexOf('|');
        pairs.push([sc.slice(0, bar), sc.slice(bar + 1)]);
      }
    }
    return pairs;
  }
}

function collectConcepts(concepts: CodeSystemConcept[], system: string, out: [string, string][]): void {
  for (const c of concepts) {
    out.push([system, c.code]);
    if (c.concept) collectConcepts(c.concept, system, out);
  }
}

function toCodeSet(url: string, pairs: [string, string][]): CodeSet {
  return {
    url,
    codes: new Set(pairs.map(([, c]) => c)),
    systemCodes: new Set(pairs.map(([s, c]) => `${s}|${c}`)),
  };
}

/** Canonical references may carry a version ("...|4.0.1"); we hold one version of each. */
export function stripVersion(canonical: string): string {
  const bar = canonical.indexOf('|');
  return bar < 0 ? canonical : canonical.slice(0, bar);
}
