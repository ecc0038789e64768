import { issue } from '../fhir/outcome';
import { bindingProblem, isBindable } from './bindings';
import type { ConstraintEnv } from './invariants';
import { constraintIssue, type Issues } from './issues';
import { asList, deepEqual, isObject, isUpper, matchesPattern, typeCodeFromSuffix, type JsonObject } from './json';
import { CORE_PREFIX, type CompiledProfile, type ProfileNode } from './profile-model';
import { discriminatorsOf, matchesSlice, type Located } from './slicing';
import type { Terminology } from './terminology';

export interface ProfileContext {
  readonly terminology: Terminology;
  readonly resourceTypes: ReadonlySet<string>;
  readonly typeNames: ReadonlySet<string>;
  profile(url: string): CompiledProfile | undefined;
}

/**
 * Checks an instance against the rules a profile's differential adds: cardinality, type restriction
 * (with reference target profiles and type profiles such as extension definitions), fixed[x],
 * pattern[x], bindings (required: error; extensible/preferred: warning), constraints with their
 * severity, and slicing (value, pattern, type, profile, exists discriminators; open or closed).
 * Base-spec rules are not repeated here: the structure validator has already checked them.
 */
export class ProfileValidator {
  constructor(private readonly ctx: ProfileContext) {}

  validate(value: JsonObject, profile: CompiledProfile, path: string, issues: Issues, env: ConstraintEnv): void {
    const base = profile.baseProfile && this.ctx.profile(profile.baseProfile);
    if (base) this.validate(value, base, path, issues, env);
    const run = new Run(this, profile.url, issues, env);
    run.checkValue(profile.root, { value, path });
  }

  /** True when the value satisfies the profile with no errors (the `profile` slicing discriminator). */
  conformsTo(value: unknown, url: string, env: ConstraintEnv): boolean {
    const profile = this.ctx.profile(url);
    // A core definition we hold no rules for (a base type, SimpleQuantity) adds nothing to the base checks.
    if (!profile) return url.startsWith(CORE_PREFIX);
    if (!isObject(value)) return false;
    const issues: Issues = [];
    this.validate(value, profile, profile.type, issues, env);
    return !issues.some((i) => i.severity === 'error');
  }

  get context(): ProfileContext {
    return this.ctx;
  }
}

/** One validation of one instance against one profile: accumulates issues. */
class Run {
  constructor(
    private readonly validator: ProfileValidator,
    private readonly profileUrl: string,
    private readonly issues: Issues,
    private readonly env: ConstraintEnv,
  ) {}

  private report(
    severity: 'error' | 'warning',
    code: 'required' | 'structure' | 'value' | 'code-invalid' | 'processing',
    text: string,
    path: string,
  ): void {
    this.issues.push(issue(severity, code, `${text} (profile ${this.profileUrl})`, path));
  }

  checkValue(node: ProfileNode, item: Located): void {
    const { value, path } = item;
    // A value of a type the profile excludes is reported once; the rules for the allowed types do not apply to it.
    if (node.types && !this.checkType(node, item)) return;
    if (node.fixed !== undefined && !deepEqual(value, node.fixed)) {
      this.report('error', 'value', `Value must be exactly ${JSON.stringify(node.fixed)}`, path);
    }
    if (node.pattern !== undefined && !matchesPattern(value, node.pattern)) {
      this.report('error', 'value', `Value must match the pattern ${JSON.stringify(node.pattern)}`, path);
    }
    if (node.binding) this.checkBinding(node, item);
    for (const c of node.constraints) {
      if (c.evaluate(value, this.env) === false) this.issues.push(constraintIssue(c, path, this.profileUrl));
    }
    if (!isObject(value)) return;
    for (const child of node.children) this.checkChild(child, value, path);
  }

  private checkChild(node: ProfileNode, parent: JsonObject, parentPath: string): void {
    const items = collect(parent, node, parentPath, this.validator.context.typeNames);
    const where = `${parentPath}.${node.choice ? `${node.name}[x]` : node.name}`;
    this.checkCount(node, items.length, where, '');
    for (const item of items) this.checkValue(node, item);
    if (node.slices.length > 0) this.checkSlices(node, parent, items, parentPath, where);
  }

  private checkCount(node: ProfileNode, count: number, where: string, slice: string): void {
    if (node.min !== undefined && count < node.min) {
      this.report(
        'error',
        'required',
        `${node.id}${slice}: minimum required = ${node.min}, but only found ${count}`,
        where,
      );
    }
    if (node.max !== undefined && count > node.max) {
      this.report('error', 'structure', `${node.id}${slice}: maximum allowed = ${node.max}, but found ${count}`, where);
    }
  }

  private checkSlices(
    node: ProfileNode,
    parent: JsonObject,
    items: Located[],
    parentPath: string,
    where: string,
  ): void {
    // Type slices of a choice (value[x]:valueInteger) are simply the element under that key.
    const typeSlices = node.slices.filter((s) => s.name !== node.name);
    for (const slice of typeSlices) {
      const members = collect(parent, slice, parentPath, this.validator.context.typeNames);
      this.checkCount(slice, members.length, `${parentPath}.${slice.name}`, '');
      for (const m of members) this.checkValue(slice, m);
    }
    const slices = node.slices.filter((s) => s.name === node.name);
    if (slices.length === 0) return;
    const discriminators = discriminatorsOf(node);
    const conforms = (v: unknown, url: string): boolean => this.validator.conformsTo(v, url, this.env);
    const members = new Map<ProfileNode, Located[]>(slices.map((s) => [s, []]));
    for (const item of items) {
      const slice = slices.find((s) => matchesSlice(s, item, discriminators, conforms));
      if (slice) members.get(slice)?.push(item);
      else if (node.slicing?.rules === 'closed') {
        this.report(
          'error',
          'structure',
          `${node.id}: the value does not match any slice of a closed slicing`,
          item.path,
        );
      }
    }
    for (const [slice, list] of members) {
      this.checkCount(slice, list.length, where, ` (slice '${slice.sliceName ?? ''}')`);
      for (const m of list) this.checkValue(slice, m);
    }
  }

  /** Type restriction, reference targets and type profiles; false when the value's type is not allowed. */
  private checkType(node: ProfileNode, item: Located): boolean {
    const types = node.types ?? [];
    if (item.type && !types.some((t) => t.code === item.type)) {
      const allowed = types.map((t) => t.code).join(', ');
      this.report('error', 'structure', `Type ${item.type} is not allowed here; allowed: ${allowed}`, item.path);
      return false;
    }
    const type = types.find((t) => t.code === (item.type ?? t.code));
    if (!type) return true;
    if (type.targetProfiles.length > 0 && isObject(item.value)) this.checkTarget(type.targetProfiles, item);
    for (const url of type.profiles) this.checkTypeProfile(url, item);
    return true;
  }

  /** Reference.targetProfile: the referenced resource type must be one the profile allows. */
  private checkTarget(targetProfiles: readonly string[], item: Located): void {
    const ref = (item.value as JsonObject).reference;
    const target = typeof ref === 'string' ? this.referencedType(ref) : undefined;
    if (!target) return;
    const ctx = this.validator.context;
    const allowed = targetProfiles.map(
      (url) => ctx.profile(url)?.type ?? (url.startsWith(CORE_PREFIX) ? url.slice(CORE_PREFIX.length) : url),
    );
    if (allowed.includes(target) || allowed.includes('Resource')) return;
    this.report(
      'error',
      'structure',
      `The reference must point to ${allowed.join(' or ')}, not ${target}`,
      `${item.path}.reference`,
    );
  }

  private referencedType(ref: string): string | undefined {
    if (ref.startsWith('#')) {
      const contained = isObject(this.env.resource) ? asList(this.env.resource.contained) : [];
      const found = contained.find((c) => isObject(c) && c.id === ref.slice(1));
      return isObject(found) && typeof found.resourceType === 'string' ? found.resourceType : undefined;
    }
    const parts = ref.split('/');
    const h = parts.indexOf('_history');
    const typeIndex = (h >= 0 ? h : parts.length) - 2;
    const type = parts[typeIndex];
    return type && this.validator.context.resourceTypes.has(type) ? type : undefined;
  }

  private checkTypeProfile(url: string, item: Located): void {
    if (!isObject(item.value)) return;
    const profile = this.validator.context.profile(url);
    if (!profile) {
      if (url.startsWith(CORE_PREFIX)) return; // a core definition: the base checks cover it
      this.report('error', 'processing', `Profile ${url} is not known`, item.path);
      return;
    }
    this.validator.validate(item.value, profile, item.path, this.issues, this.env);
  }

  private checkBinding(node: ProfileNode, item: Located): void {
    const binding = node.binding;
    const type = item.type ?? node.types?.[0]?.code ?? inferCodedType(item.value);
    if (!binding || !type || !isBindable(type)) return;
    const set = this.validator.context.terminology.expand(binding.valueSet);
    const problem = set && bindingProblem(set, type, item.value);
    if (!problem) return;
    const severity = binding.strength === 'required' ? 'error' : 'warning';
    this.report(severity, 'code-invalid', `${problem} (${binding.strength} binding)`, item.path);
  }
}

function inferCodedType(value: unknown): string | undefined {
  if (typeof value === 'string') return 'code';
  if (isObject(value)) return Array.isArray(value.coding) ? 'CodeableConcept' : 'Coding';
  return undefined;
}

/** The values a profile node designates on a parent object, with their paths (and types for choices). */
function collect(parent: JsonObject, node: ProfileNode, parentPath: string, typeNames: ReadonlySet<string>): Located[] {
  const out: Located[] = [];
  const add = (key: string, type: string | undefined): void => {
    const raw = parent[key];
    if (Array.isArray(raw)) {
      raw.forEach((value, i) => {
        if (value !== null) out.push({ value, path: `${parentPath}.${key}[${i}]`, type });
      });
    } else if (raw !== undefined && raw !== null) {
      out.push({ value: raw, path: `${parentPath}.${key}`, type });
    }
  };
  if (node.choice) {
    for (const key of Object.keys(parent)) {
      if (key.length > node.name.length && key.startsWith(node.name) && isUpper(key.charCodeAt(node.name.length))) {
        add(key, typeCodeFromSuffix(key.slice(node.name.length), typeNames));
      }
    }
  } else {
    add(node.name, undefined);
  }
  return out;
}
