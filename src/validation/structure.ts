import { LOGICAL_RESOURCE_TYPES } from '../fhir/definitions';
import { issue } from '../fhir/outcome';
import { hasNumberText, numberText } from '../fhir/number-text';
import { bindingProblem, isBindable } from './bindings';
import { codingProblem } from './coded-values';
import type { ChildEntry, ChildRule, ComplexModel } from './element-model';
import type { CompiledConstraint, ConstraintEnv } from './invariants';
import { constraintIssue, ELE_1, type Issues } from './issues';
import { isObject, jsonKind, type JsonObject } from './json';
import { primitiveProblem, type PrimitiveRule } from './primitives';
import type { Terminology } from './terminology';

/** What the structure walker needs to know about the specification, all precompiled. */
export interface BaseDefinitions {
  readonly models: ReadonlyMap<string, ComplexModel>;
  readonly resourceTypes: ReadonlySet<string>;
  readonly primitives: ReadonlyMap<string, PrimitiveRule>;
  readonly terminology: Terminology;
}

const QUANTITY_TYPES = ['Quantity', 'Age', 'Count', 'Distance', 'Duration'];
const INTEGER_TYPES = new Set(['integer', 'positiveInt', 'unsignedInt']);

interface Walk {
  readonly issues: Issues;
  readonly env: ConstraintEnv;
  /** Resources inside the one validated are only checked to be resources (see validateEnvelope). */
  readonly envelope: boolean;
  /** Whether the resource holds written number texts at all (nearly never): else integers are not looked at again. */
  readonly numberTexts: boolean;
}

/**
 * Validates JSON against the base R4 definitions: structure, JSON types, cardinality, choice types,
 * primitive formats, `_field` primitive extensions, required bindings and invariants; descends into
 * contained resources and any other element of type Resource (Bundle.entry.resource, Parameters...).
 */
export class StructureValidator {
  private readonly coding: ComplexModel | undefined;
  /** Quantity and its specializations (Age, Count, Distance, Duration); SimpleQuantity is a Quantity. */
  private readonly quantities: ReadonlySet<ComplexModel | undefined>;

  constructor(private readonly defs: BaseDefinitions) {
    this.coding = defs.models.get('Coding');
    this.quantities = new Set(QUANTITY_TYPES.map((t) => defs.models.get(t)).filter((m) => m !== undefined));
  }

  validateResource(
    value: unknown,
    path: string | undefined,
    issues: Issues,
    rootResource?: unknown,
    envelope = false,
  ): void {
    const model = this.resourceModel(value, path, issues);
    if (!model || !isObject(value)) return;
    const walk: Walk = {
      issues,
      env: { resource: value, rootResource: rootResource ?? value },
      envelope,
      numberTexts: hasNumberText(value),
    };
    const resourcePath = path ?? String(value.resourceType);
    this.validateObject(value, model, resourcePath, walk, true);
    // A contained resource is shown through its container's narrative: dom-6 (text) is not asked of it.
    const contained = path !== undefined && path.endsWith(']') && path.lastIndexOf('.contained[') > 0;
    const constraints = contained ? model.constraints.filter((c) => c.key !== 'dom-6') : model.constraints;
    this.evaluate(constraints, value, resourcePath, walk);
  }

  /** The model of a value that must be a resource, or undefined after reporting why it is not one. */
  private resourceModel(value: unknown, path: string | undefined, issues: Issues): ComplexModel | undefined {
    const at = path ?? 'Resource';
    if (!isObject(value)) {
      issues.push(issue('error', 'structure', `A resource must be a JSON object, found ${jsonKind(value)}`, at));
      return undefined;
    }
    const type = value.resourceType;
    if (typeof type !== 'string') {
      issues.push(issue('error', 'required', 'The resource has no resourceType', at));
      return undefined;
    }
    // Validated by the module that defines them (a ViewDefinition's shape and FHIRPath: src/views).
    if (LOGICAL_RESOURCE_TYPES.includes(type)) return undefined;
    const model = this.defs.resourceTypes.has(type) ? this.defs.models.get(type) : undefined;
    if (!model) issues.push(issue('error', 'not-supported', `Unknown resource type '${type}'`, `${at}.resourceType`));
    return model;
  }

  private validateObject(obj: JsonObject, model: ComplexModel, path: string, walk: Walk, isResource: boolean): void {
    // Per child rule: how many values were seen and, for choices, which key carried them.
    let seen: Map<ChildRule, { count: number; key: string }> | undefined;
    for (const key of Object.keys(obj)) {
      if (isResource && key === 'resourceType') continue;
      const underscore = key.charCodeAt(0) === 95;
      const name = underscore ? key.slice(1) : key;
      const entry = model.keys.get(name);
      if (!entry || (underscore && !this.defs.primitives.has(entry.type))) {
        walk.issues.push(issue('error', 'structure', `Unrecognized element '${key}'`, `${path}.${key}`));
        continue;
      }
      const count = this.validateProperty(obj, key, name, entry, underscore, path, walk);
      seen ??= new Map();
      const prior = seen.get(entry.rule);
      if (!prior) {
        seen.set(entry.rule, { count, key: name });
      } else if (prior.key !== name) {
        walk.issues.push(
          issue(
            'error',
            'structure',
            `Only one of ${entry.rule.name}[x] may be present, found '${prior.key}' and '${name}'`,
            `${path}.${name}`,
          ),
        );
      } else {
        prior.count = Math.max(prior.count, count); // `field` and `_field` describe the same values
      }
    }
    for (const rule of model.rules) {
      const count = seen?.get(rule)?.count ?? 0;
      if (count < rule.min) {
        const where = rule.choice ? `${rule.name}[x]` : rule.name;
        walk.issues.push(
          issue(
            'error',
            'required',
            `${rule.path}: minimum required = ${rule.min}, but only found ${count}`,
            `${path}.${where}`,
          ),
        );
      } else if (count > rule.max) {
        walk.issues.push(
          issue(
            'error',
            'structure',
            `${rule.path}: maximum allowed = ${rule.max}, but found ${count}`,
            `${path}.${rule.name}`,
          ),
        );
      }
    }
  }

  /** Validates one property (`name` or `_name`); returns how many values it carries. */
  private validateProperty(
    obj: JsonObject,
    key: string,
    name: string,
    entry: ChildEntry,
    underscore: boolean,
    path: string,
    walk: Walk,
  ): number {
    const { rule } = entry;
    const value = obj[key];
    const at = `${path}.${key}`;
    if (value === null) {
      walk.issues.push(issue('error', 'structure', `'${key}' must not be null`, at));
      return 0;
    }
    if (!rule.array) {
      if (Array.isArray(value)) {
        walk.issues.push(issue('error', 'structure', `'${key}' must be a single value, not an array`, at));
        return value.length;
      }
      this.validateItem(value, entry, underscore, `${path}.${name}`, walk);
      if (walk.numberTexts && Number.isInteger(value))
        this.checkWrittenInteger(obj, key, entry.type, `${path}.${name}`, walk);
      return 1;
    }
    if (!Array.isArray(value)) {
      walk.issues.push(issue('error', 'structure', `'${key}' must be an array`, at));
      this.validateItem(value, entry, underscore, `${path}.${name}`, walk);
      return 1;
    }
    if (value.length === 0) {
      walk.issues.push(issue('error', 'structure', `'${key}' must not be an empty array`, at));
      return 0;
    }
    // In primitive arrays, null holds a place whose value or extension is in the paired array.
    const partner = this.defs.primitives.has(entry.type) ? obj[underscore ? name : `_${name}`] : undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      const itemPath = `${path}.${name}[${i}]`;
      if (item === null) {
        if (!Array.isArray(partner) || partner[i] === null || partner[i] === undefined) {
          walk.issues.push(issue('error', 'structure', `'${key}[${i}]' must not be null`, itemPath));
        }
        continue;
      }
      this.validateItem(item, entry, underscore, itemPath, walk);
      if (walk.numberTexts && Number.isInteger(item)) this.checkWrittenInteger(value, i, entry.type, itemPath, walk);
    }
    return value.length;
  }

  /**
   * An integer written with a fraction or an exponent (`14.0`, `1.4e1`) reads as an integer in
   * JavaScript, but is not a valid FHIR integer; the parser kept its text (src/fhir/number-text.ts).
   * (A value that is not a whole number at all was reported as such already.)
   */
  private checkWrittenInteger(container: object, key: string | number, type: string, path: string, walk: Walk): void {
    if (!INTEGER_TYPES.has(type)) return;
    const text = numberText(container, key);
    if (text === undefined || /^-?\d+$/.test(text)) return;
    walk.issues.push(issue('error', 'value', `The value '${text}' is not a valid ${type}`, path));
  }

  private validateItem(item: unknown, entry: ChildEntry, underscore: boolean, path: string, walk: Walk): void {
    const { rule, type } = entry;
    if (underscore) {
      // `_field`: the id and extensions of a primitive, i.e. an Element.
      this.validateComplex(item, this.defs.models.get('Element'), path, walk, []);
      return;
    }
    const primitive = this.defs.primitives.get(type);
    if (primitive) {
      const problem = primitiveProblem(primitive, item);
      if (problem) {
        walk.issues.push(issue('error', typeof item === primitive.json ? 'value' : 'structure', problem, path));
        return;
      }
      if (rule.binding?.strength === 'required' && isBindable(type)) this.checkBinding(rule, type, item, path, walk);
      this.evaluate(rule.constraints, item, path, walk);
      return;
    }
    if (type === 'Resource' || this.defs.resourceTypes.has(type)) {
      if (walk.envelope) this.resourceModel(item, path, walk.issues);
      else this.validateResource(item, path, walk.issues, walk.env.rootResource);
      return;
    }
    const model = rule.inline ?? this.defs.models.get(type);
    this.validateComplex(item, model, path, walk, rule.constraints);
    if (rule.binding?.strength === 'required' && isBindable(type)) this.checkBinding(rule, type, item, path, walk);
  }

  private validateComplex(
    item: unknown,
    model: ComplexModel | undefined,
    path: string,
    walk: Walk,
    elementConstraints: readonly CompiledConstraint[],
  ): void {
    if (!isObject(item)) {
      walk.issues.push(
        issue(
          'error',
          'structure',
          `Expected a JSON object for ${model?.name ?? 'this element'}, found ${jsonKind(item)}`,
          path,
        ),
      );
      return;
    }
    if (Object.keys(item).length === 0) {
      walk.issues.push(constraintIssue(ELE_1, path));
      return;
    }
    if (!model) return;
    this.validateObject(item, model, path, walk, false);
    this.evaluate(elementConstraints, item, path, walk);
    if (model.constraints.length > 0) this.evaluate(model.constraints, item, path, walk, elementConstraints);
    if (model === this.coding || this.quantities.has(model)) {
      const problem = codingProblem(this.defs.terminology, item);
      if (problem) walk.issues.push(issue('error', 'code-invalid', problem, path));
    }
  }

  private evaluate(
    constraints: readonly CompiledConstraint[],
    node: unknown,
    path: string,
    walk: Walk,
    alreadyChecked?: readonly CompiledConstraint[],
  ): void {
    for (const c of constraints) {
      // Snapshots repeat a type's invariants on elements of that type (ext-1 on every .extension).
      if (alreadyChecked && alreadyChecked.length > 0 && alreadyChecked.some((d) => d.key === c.key)) continue;
      if (c.evaluate(node, walk.env) === false) walk.issues.push(constraintIssue(c, path));
    }
  }

  private checkBinding(rule: ChildRule, type: string, value: unknown, path: string, walk: Walk): void {
    const set = rule.binding && this.defs.terminology.expand(rule.binding.valueSet);
    const problem = set && bindingProblem(set, type, value);
    if (problem)
      walk.issues.push(issue('error', 'code-invalid', problem.replace(' value set ', ' required value set '), path));
  }
}
