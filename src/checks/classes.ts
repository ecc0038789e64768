import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Coding, ValueSet, ValueSetComposeInclude, ValueSetExpansionContains } from '@medplum/fhirtypes';
import type { MedicationInfo } from './medications';
import { NDC, ndcProductKey } from './ndc';

/**
 * Medication classes and other value sets (drug screens, diagnoses) as FHIR ValueSets, with local
 * membership tests. No terminology server is involved: the sets we ship carry either their expansion
 * (the CDC sets) or a compose with explicit concepts, ATC `is-a` filters (ATC codes nest by prefix, so
 * `C09` covers every RAS agent) and includes of other value sets.
 */

export const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const ATC = 'http://www.whocc.no/atc';
export const MEDICATION_CLASS_SYSTEM = 'https://meds-fhir.org/fhir/CodeSystem/medication-class';
/**
 * Marks a ValueSet as a medication class when it is stored at runtime (the shipped ones are named in
 * terminology/medication-classes.json instead). Sub-extensions, all optional: `key` (valueCode; default
 * the ValueSet id), `adherence` (valueBoolean; default true), `refillGraceDays` and `followUpWindowDays`
 * (valueInteger).
 */
export const MEDICATION_CLASS_EXTENSION = 'https://meds-fhir.org/fhir/StructureDefinition/medication-class';

/** Where the shipped terminology lives: <repo>/terminology, found from this file in src/ or dist/src/. */
export function defaultTerminologyDir(): string {
  return findRepoDir('terminology');
}

/** <repo>/name, where <repo> is the nearest folder above this file holding package.json (works from src/ and dist/). */
export function findRepoDir(name: string): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return path.join(dir, name);
    dir = path.dirname(dir);
  }
  throw new Error(`Cannot find the repository root above ${__dirname}`);
}

export interface MedicationClass {
  /** Short stable key used by checks and in the adherence parameter (e.g. `buprenorphine`). */
  key: string;
  title: string;
  valueSetUrl: string;
  /** Whether PDC, late-refill and new-start tracking apply (false for PRN-prone safety-only classes). */
  adherence: boolean;
  refillGraceDays: number;
  /** Follow-up window after a new start, in days; undefined when the class has no follow-up rule. */
  followUpWindowDays?: number;
}

export interface ClassOptions {
  key?: string;
  adherence?: boolean;
  refillGraceDays?: number;
  followUpWindowDays?: number;
}

interface Membership {
  exact: Map<string, Set<string>>;
  /** NDC products (labeler and product, 5-4 digits), matched by any package code of the product. */
  ndcProducts: Set<string>;
  prefixes: Map<string, string[]>;
  /** `regex` filters (whole-code matches), for code systems whose groups are code ranges (ICD-10-CM chapters). */
  patterns: Map<string, RegExp[]>;
  wholeSystems: Set<string>;
}

export class MedicationClassRegistry {
  private readonly valueSets = new Map<string, ValueSet>();
  private readonly classesByKey = new Map<string, MedicationClass>();
  private readonly classKeyByUrl = new Map<string, string>();
  /** Expanded membership per value set url; cleared whenever a value set is added (includes may change). */
  private membershipCache = new Map<string, Membership>();

  /** Registers a value set; with `asClass` it also becomes a medication class. */
  addValueSet(valueSet: ValueSet, asClass?: ClassOptions | boolean): MedicationClass | undefined {
    if (valueSet.resourceType !== 'ValueSet' || !valueSet.url) throw new Error('A ValueSet with a url is required');
    this.valueSets.set(valueSet.url, valueSet);
    this.membershipCache = new Map();
    if (!asClass) return undefined;
    const options = asClass === true ? {} : asClass;
    const key = options.key ?? valueSet.id ?? valueSet.name;
    if (!key) throw new Error(`ValueSet ${valueSet.url} needs an id, a name or an explicit class key`);
    const cls: MedicationClass = {
      key,
      title: valueSet.title ?? valueSet.name ?? key,
      valueSetUrl: valueSet.url,
      adherence: options.adherence ?? true,
      refillGraceDays: options.refillGraceDays ?? 7,
      followUpWindowDays: options.followUpWindowDays,
    };
    this.classesByKey.set(key, cls);
    this.classKeyByUrl.set(valueSet.url, key);
    return cls;
  }

  getValueSet(url: string): ValueSet | undefined {
    return this.valueSets.get(url);
  }

  classes(): MedicationClass[] {
    return [...this.classesByKey.values()];
  }

  /** A class by key or by value set url. */
  getClass(keyOrUrl: string): MedicationClass | undefined {
    return this.classesByKey.get(keyOrUrl) ?? this.classesByKey.get(this.classKeyByUrl.get(keyOrUrl) ?? '');
  }

  /** True when the coding is in the value set (given by url or by class key). */
  containsCoding(valueSetOrClass: string, coding: Coding): boolean {
    if (!coding.system || !coding.code) return false;
    const url = this.getClass(valueSetOrClass)?.valueSetUrl ?? valueSetOrClass;
    const m = this.membership(url);
    if (m.wholeSystems.has(coding.system)) return true;
    if (coding.system === NDC) {
      const product = ndcProductKey(coding.code);
      return product !== undefined && m.ndcProducts.has(product);
    }
    if (m.exact.get(coding.system)?.has(coding.code)) return true;
    const prefixes = m.prefixes.get(coding.system);
    if (prefixes !== undefined && prefixes.some((p) => coding.code!.startsWith(p))) return true;
    return m.patterns.get(coding.system)?.some((p) => p.test(coding.code!)) ?? false;
  }

  containsAny(valueSetOrClass: string, codings: readonly Coding[]): boolean {
    return codings.some((c) => this.containsCoding(valueSetOrClass, c));
  }

  /** The class test computePdc takes: any coding of the medication or of its ingredients is in the class. */
  matcher(keyOrUrl: string): { key: string; matches(medication: MedicationInfo): boolean } {
    const cls = this.getClass(keyOrUrl);
    if (!cls) throw new Error(`Unknown medication class ${keyOrUrl}`);
    return { key: cls.key, matches: (m) => this.containsAny(cls.valueSetUrl, m.codings) };
  }

  private membership(url: string): Membership {
    let m = this.membershipCache.get(url);
    if (!m) {
      m = {
        exact: new Map(),
        ndcProducts: new Set(),
        prefixes: new Map(),
        patterns: new Map(),
        wholeSystems: new Set(),
      };
      this.expandInto(url, m, new Set());
      this.membershipCache.set(url, m);
    }
    return m;
  }

  private expandInto(url: string, m: Membership, seen: Set<string>): void {
    if (seen.has(url)) return;
    seen.add(url);
    const vs = this.valueSets.get(url);
    if (!vs) throw new Error(`Unknown value set ${url}`);
    const addExact = (system: string | undefined, code: string | undefined): void => {
      if (!system || !code) return;
      if (system === NDC) {
        const product = ndcProductKey(code);
        if (product !== undefined) m.ndcProducts.add(product);
        return;
      }
      let set = m.exact.get(system);
      if (!set) m.exact.set(system, (set = new Set()));
      set.add(code);
    };
    const walk = (contains: ValueSetExpansionContains[] | undefined): void => {
      for (const c of contains ?? []) {
        addExact(c.system, c.code);
        walk(c.contains);
      }
    };
    // An expansion, when present, is the authoritative content (the CDC sets include other sets we do not
    // ship, but carry their full expansion); otherwise the compose is evaluated.
    if (vs.expansion?.contains?.length) walk(vs.expansion.contains);
    else for (const include of vs.compose?.include ?? []) this.includeInto(include, m, seen, addExact);
  }

  private includeInto(
    include: ValueSetComposeInclude,
    m: Membership,
    seen: Set<string>,
    addExact: (system: string | undefined, code: string | undefined) => void,
  ): void {
    for (const nested of include.valueSet ?? []) this.expandInto(nested, m, seen);
    if (!include.system) return;
    for (const c of include.concept ?? []) addExact(include.system, c.code);
    for (const f of include.filter ?? []) {
      // ATC (and any code system whose codes nest by prefix): is-a / descendent-of mean "starts with".
      if ((f.op === 'is-a' || f.op === 'descendent-of') && f.property === 'concept' && f.value) {
        const list = m.prefixes.get(include.system) ?? [];
        list.push(f.value);
        m.prefixes.set(include.system, list);
      } else if (f.op === '=' && f.property === 'concept' && f.value) {
        addExact(include.system, f.value);
      } else if (f.op === 'regex' && (f.property === 'concept' || f.property === 'code') && f.value) {
        const list = m.patterns.get(include.system) ?? [];
        list.push(new RegExp(`^(?:${f.value})$`));
        m.patterns.set(include.system, list);
      }
    }
    if (!include.concept?.length && !include.filter?.length && !include.valueSet?.length) {
      m.wholeSystems.add(include.system);
    }
  }
}

/** The class options a ValueSet declares with MEDICATION_CLASS_EXTENSION; undefined when it is not a class. */
export function classOptionsOf(valueSet: ValueSet): ClassOptions | undefined {
  const marker = valueSet.extension?.find((e) => e.url === MEDICATION_CLASS_EXTENSION);
  if (!marker) return undefined;
  const part = (url: string) => marker.extension?.find((e) => e.url === url);
  const options: ClassOptions = {};
  const key = part('key')?.valueCode ?? part('key')?.valueString;
  if (key !== undefined) options.key = key;
  const adherence = part('adherence')?.valueBoolean;
  if (adherence !== undefined) options.adherence = adherence;
  const grace = part('refillGraceDays')?.valueInteger;
  if (grace !== undefined) options.refillGraceDays = grace;
  const window = part('followUpWindowDays')?.valueInteger;
  if (window !== undefined) options.followUpWindowDays = window;
  return options;
}

interface ClassManifest {
  classes: (ClassOptions & { key: string; valueSet: string })[];
}

/**
 * Loads every ValueSet JSON file under dir (recursively), then the class manifest
 * (medication-classes.json) that says which of them are medication classes and their defaults.
 */
export function loadMedicationClasses(dir: string = defaultTerminologyDir()): MedicationClassRegistry {
  const registry = new MedicationClassRegistry();
  let manifest: ClassManifest | undefined;
  const visit = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith('.json')) {
        const json = JSON.parse(fs.readFileSync(full, 'utf8')) as { resourceType?: string };
        if (entry.name === 'medication-classes.json') manifest = json as ClassManifest;
        else if (json.resourceType === 'ValueSet') registry.addValueSet(json as ValueSet);
      }
    }
  };
  visit(dir);
  for (const c of manifest?.classes ?? []) {
    const vs = registry.getValueSet(c.valueSet);
    if (!vs) throw new Error(`medication-classes.json names ${c.valueSet}, which is not in ${dir}`);
    registry.addValueSet(vs, c);
  }
  return registry;
}
