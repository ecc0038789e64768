import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Model, compile } from 'fhirpath';
import * as r4Model from 'fhirpath/fhir-context/r4';
import type { Expression, PlanDefinition, PlanDefinitionAction } from '@medplum/fhirtypes';
import { findRepoDir } from './classes';

/**
 * Checks are data: PlanDefinition actions whose applicability condition is a `text/fhirpath` expression.
 * This module reads them (from checks/ or at runtime), validates their shape and compiles every
 * expression once. Conventions, all plain R4 elements or simple extensions:
 *
 * - `action.code[0].coding` with system CHECKS_SYSTEM: the stable check code (becomes DetectedIssue.code /
 *   Task.code of each finding);
 * - `action.output[0].type`: `DetectedIssue` (a problem: adherence, safety) or `Task` (something to do);
 * - extension CHECK_FOR_EACH (valueExpression): the items the check is evaluated for, each exposed as
 *   `%item` (a class key, a statement, a CarePlan activity, ...); without it the check runs once;
 * - `action.condition` (kind applicability): every expression must yield `true` for a finding;
 * - `action.dynamicValue` with path `detail` (human-readable text), `severity` (DetectedIssue: high |
 *   moderate | low), `priority` (Task: routine | urgent | asap | stat) and `evidence` (resources or
 *   `Type/id` strings);
 * - extension CHECK_PARAMETER (name + value[x]): a tunable number exposed as `%name`, overridable per
 *   review through ReviewConfig.parameters.
 */

export const CHECKS_SYSTEM = 'https://meds-fhir.org/fhir/CodeSystem/medication-checks';
export const CHECK_FOR_EACH = 'https://meds-fhir.org/fhir/StructureDefinition/check-for-each';
export const CHECK_PARAMETER = 'https://meds-fhir.org/fhir/StructureDefinition/check-parameter';

type Evaluator = ReturnType<typeof compile>;
export type ParameterValue = string | number | boolean;

export interface CompiledCheck {
  code: string;
  display: string;
  description?: string;
  output: 'DetectedIssue' | 'Task';
  forEach?: Evaluator;
  conditions: Evaluator[];
  detail?: Evaluator;
  severity?: Evaluator;
  priority?: Evaluator;
  evidence?: Evaluator;
  parameters: Record<string, ParameterValue>;
  /** Canonical of the PlanDefinition it came from, for provenance. */
  source?: string;
}

export class CheckDefinitionError extends Error {}

const model = r4Model as unknown as Model;

function compileExpression(expr: Expression | undefined, where: string): Evaluator {
  if (!expr?.expression) throw new CheckDefinitionError(`${where}: expression is required`);
  if (expr.language !== 'text/fhirpath') throw new CheckDefinitionError(`${where}: language must be text/fhirpath`);
  try {
    return compile(expr.expression, model);
  } catch (e) {
    throw new CheckDefinitionError(`${where}: ${(e as Error).message}`);
  }
}

function parameterValue(ext: {
  extension?: { url: string; [k: string]: unknown }[];
}): [string, ParameterValue] | undefined {
  const name = ext.extension?.find((e) => e.url === 'name')?.valueString;
  const value = ext.extension?.find((e) => e.url === 'value');
  if (typeof name !== 'string' || !value) return undefined;
  const v = value.valueInteger ?? value.valueDecimal ?? value.valueString ?? value.valueBoolean;
  return v === undefined ? undefined : [name, v as ParameterValue];
}

function compileAction(action: PlanDefinitionAction, source: string | undefined): CompiledCheck {
  const coding = action.code?.flatMap((c) => c.coding ?? []).find((c) => c.system === CHECKS_SYSTEM);
  if (!coding?.code)
    throw new CheckDefinitionError(`PlanDefinition ${source}: action needs a code from ${CHECKS_SYSTEM}`);
  const where = `check ${coding.code}`;
  const output = action.output?.[0]?.type;
  if (output !== 'DetectedIssue' && output !== 'Task') {
    throw new CheckDefinitionError(`${where}: output[0].type must be DetectedIssue or Task`);
  }
  const conditions = (action.condition ?? [])
    .filter((c) => c.kind === 'applicability')
    .map((c, i) => compileExpression(c.expression, `${where} condition ${i}`));
  if (!conditions.length) throw new CheckDefinitionError(`${where}: an applicability condition is required`);
  const dynamic = (p: string): Evaluator | undefined => {
    const dv = action.dynamicValue?.find((d) => d.path === p);
    return dv ? compileExpression(dv.expression, `${where} dynamicValue ${p}`) : undefined;
  };
  const forEach = action.extension?.find((e) => e.url === CHECK_FOR_EACH)?.valueExpression;
  const parameters: Record<string, ParameterValue> = {};
  for (const ext of action.extension?.filter((e) => e.url === CHECK_PARAMETER) ?? []) {
    const p = parameterValue(ext as { extension?: { url: string }[] });
    if (!p) throw new CheckDefinitionError(`${where}: a check-parameter needs name and value`);
    parameters[p[0]] = p[1];
  }
  return {
    code: coding.code,
    display: coding.display ?? action.title ?? coding.code,
    description: action.description,
    output,
    forEach: forEach ? compileExpression(forEach, `${where} for-each`) : undefined,
    conditions,
    detail: dynamic('detail'),
    severity: dynamic('severity'),
    priority: dynamic('priority'),
    evidence: dynamic('evidence'),
    parameters,
    source,
  };
}

export class CheckRegistry {
  private readonly checks = new Map<string, CompiledCheck>();

  /** Adds (or replaces, by code) every check of a PlanDefinition; returns the codes added. */
  add(planDefinition: PlanDefinition): string[] {
    if (planDefinition.resourceType !== 'PlanDefinition')
      throw new CheckDefinitionError('A PlanDefinition is required');
    if (planDefinition.status === 'retired') return [];
    const compiled = (planDefinition.action ?? []).map((a) => compileAction(a, planDefinition.url));
    for (const c of compiled) this.checks.set(c.code, c);
    return compiled.map((c) => c.code);
  }

  remove(code: string): boolean {
    return this.checks.delete(code);
  }

  get(code: string): CompiledCheck | undefined {
    return this.checks.get(code);
  }

  list(): CompiledCheck[] {
    return [...this.checks.values()];
  }
}

/** Loads the built-in checks: every PlanDefinition JSON file in dir (default <repo>/checks). */
export function loadChecks(dir: string = findRepoDir('checks')): CheckRegistry {
  const registry = new CheckRegistry();
  for (const name of fs.readdirSync(dir).sort()) {
    if (!name.endsWith('.json')) continue;
    const json = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as PlanDefinition;
    if (json.resourceType === 'PlanDefinition') registry.add(json);
  }
  return registry;
}
