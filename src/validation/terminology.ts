import type {
  CodeSystem,
  CodeSystemConcept,
  ValueSet,
  ValueSetComposeInclude,
  ValueSetExpansionContains,
} from '@medplum/fhirtypes';
import { isValidUcum, sameDimension, UCUM } from './ucum';

/**
 * The codes a value set allows, as Sets for O(1) membership. `codes` holds bare codes (for elements
 * of type `code`, which carry no system); `systemCodes` holds "system|code". `rules` holds what cannot
 * be listed: the UCUM units a value set takes whole or by dimension (its `canonical` filter).
 */
export interface CodeSet {
  readonly url: string;
  readonly codes: ReadonlySet<string>;
  readonly systemCodes: ReadonlySet<string>;
  readonly rules?: readonly CodeRule[];
}

/** Whether a code of `system` is in the set (system undefined: a bare `code`, its system implied by the binding). */
export type CodeRule = (system: string | undefined, code: string) => boolean;

/** A code system whose every code we hold, so a code it does not define is an error wherever it is used. */
export interface HeldCodeSystem {
  readonly url: string;
  readonly version?: string;
  has(code: string): boolean;
}

/**
 * Where a conformance resource comes from. `definitions`: the R4 specification, whose code systems are
 * judged only when HL7's own (hl7.org, terminology.hl7.org: the others it ships, DICOM or ASTM, are
 * excerpts). `added`: profiles/ and the API, which are judged whenever they say they are complete, and
 * which take a url over from the specification until they are removed.
 */
export type Origin = 'definitions' | 'added';

const MAX_SYSTEMS_REMEMBERED = 10_000;
const HL7_SYSTEM = /^http:\/\/(hl7\.org\/fhir|terminology\.hl7\.org)\//;

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
  /** The specification's own, which an added resource of the same url hides and, once removed, gives back. */
  private readonly specValueSets = new Map<string, ValueSet>();
  private readonly specCodeSystems = new Map<string, CodeSystem>();
  private readonly expanded = new Map<string, CodeSet | null>();
  /** Per system url: the code system held in full, or null (not held, or not in full). */
  private readonly held = new Map<string, HeldCodeSystem | null>();

  addValueSet(vs: ValueSet, origin: Origin = 'added'): void {
    if (!vs.url) return;
    (origin === 'definitions' ? this.specValueSets : this.valueSets).set(vs.url, vs);
    this.expanded.clear(); // another value set may include this one
  }

  addCodeSystem(cs: CodeSystem, origin: Origin = 'added'): void {
    if (!cs.url) return;
    if (origin === 'definitions') this.addSpecCodeSystem(cs);
    else this.codeSystems.set(cs.url, cs);
    this.expanded.clear();
    this.held.clear();
  }

  /**
   * The R4 v2 tables ship three code systems twice, as `<url>|<v2 version>` (v2-0360|2.3.1 and |2.7):
   * under the url Codings use, such a system holds the codes of every version (a code one of them
   * defines is not wrong), and is kept under its versioned url too.
   */
  private addSpecCodeSystem(cs: CodeSystem): void {
    const url = cs.url as string;
    this.specCodeSystems.set(url, cs);
    const bar = url.indexOf('|');
    if (bar < 0) return;
    const bare = url.slice(0, bar);
    const known = this.specCodeSystems.get(bare);
    const concept = [...(known?.concept ?? []), ...(cs.concept ?? [])];
    this.specCodeSystems.set(bare, { ...cs, url: bare, version: undefined, concept });
  }

  /** Forgets an added value set (a runtime one was deleted); the specification's of that url, if any, answers again. */
  removeValueSet(url: string): void {
    if (this.valueSets.delete(url)) this.expanded.clear();
  }

  removeCodeSystem(url: string): void {
    if (this.codeSystems.delete(url)) {
      this.expanded.clear();
      this.held.clear();
    }
  }

  hasValueSet(url: string): boolean {
    return this.valueSet(stripVersion(url)) !== undefined;
  }

  private valueSet(url: string): ValueSet | undefined {
    return this.valueSets.get(url) ?? this.specValueSets.get(url);
  }

  private codeSystem(url: string): CodeSystem | undefined {
    return this.codeSystems.get(url) ?? this.specCodeSystems.get(url);
  }

  /**
   * The code system of this url when we hold every code of it (content `complete`, not a supplement),
   * else undefined: then its codes are not judged (SNOMED CT, LOINC, RxNorm: we cannot know them).
   * Membership is case-sensitive unless the code system says `caseSensitive: false`.
   */
  heldCodeSystem(system: string): HeldCodeSystem | undefined {
    const cached = this.held.get(system);
    if (cached !== undefined) return cached ?? undefined;
    const result = this.holdInFull(system);
    // Keyed by what clients send: bounded, so endless made-up systems cannot grow it without end.
    if (this.held.size >= MAX_SYSTEMS_REMEMBERED) this.held.clear();
    this.held.set(system, result ?? null);
    return result;
  }

  private holdInFull(system: string): HeldCodeSystem | undefined {
    const added = this.codeSystems.get(system);
    const cs = added ?? (HL7_SYSTEM.test(system) ? this.specCodeSystems.get(system) : undefined);
    if (!cs || cs.content !== 'complete' || !cs.concept?.length) return undefined;
    const pairs: [string, string][] = [];
    collectConcepts(cs.concept, system, pairs);
    if (cs.caseSensitive === false) {
      const lower = new Set(pairs.map(([, c]) => c.toLowerCase()));
      return { url: system, version: cs.version, has: (code) => lower.has(code.toLowerCase()) };
    }
    const codes = new Set(pairs.map(([, c]) => c));
    return { url: system, version: cs.version, has: (code) => codes.has(code) };
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
    const vs = this.valueSet(url);
    if (!vs) return undefined;
    const pairs: [string, string][] = [];
    const rules: CodeRule[] = [];
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
        const rule = ucumRule(include);
        if (rule) {
          rules.push(rule);
          continue;
        }
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
          rules,
        );
      }
    }
    return toCodeSet(url, pairs, rules);
  }

  private includePairs(include: ValueSetComposeInclude): [string, string][] | undefined {
    if (include.filter?.length) return undefined;
    const pairs: [string, string][] = [];
    if (include.system) {
      if (include.concept?.length) {
        for (const c of include.concept) pairs.push([include.system, c.code]);
      } else {
        const cs = this.codeSystem(stripVersion(include.system));
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

function toCodeSet(url: string, pairs: [string, string][], rules: CodeRule[]): CodeSet {
  return {
    url,
    codes: new Set(pairs.map(([, c]) => c)),
    systemCodes: new Set(pairs.map(([s, c]) => `${s}|${c}`)),
    ...(rules.length ? { rules } : {}),
  };
}

/**
 * UCUM is a grammar, not a list: an include of the whole of UCUM allows every valid unit, and one
 * filtered on `canonical` (the UCUM filter the HL7 tools define: all-time-units is `canonical = a`)
 * every unit of that dimension. Other UCUM includes (explicit concepts) are ordinary lists.
 */
function ucumRule(include: ValueSetComposeInclude): CodeRule | undefined {
  if (include.system !== UCUM || include.concept?.length || include.valueSet?.length) return undefined;
  const filters = include.filter ?? [];
  const inSystem = (system: string | undefined) => system === undefined || system === UCUM;
  if (filters.length === 0) return (system, code) => inSystem(system) && isValidUcum(code);
  if (filters.length !== 1) return undefined;
  const [{ property, op, value }] = filters;
  if (property !== 'canonical' || op !== '=' || !value) return undefined;
  return (system, code) => inSystem(system) && sameDimension(code, value);
}

/** Canonical references may carry a version ("...|4.0.1"); we hold one version of each. */
export function stripVersion(canonical: string): string {
  const bar = canonical.indexOf('|');
  return bar < 0 ? canonical : canonical.slice(0, bar);
}
