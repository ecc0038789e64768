import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { compile, type Model } from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { isResourceType } from '../fhir/definitions';
import { issue } from '../fhir/outcome';
import { literalOf, substituteConstants, type ConstantLiterals } from './constants';
import { ADHERENCE_FUNCTION, ADHERENCE_TABLE, callsAdherence } from './adherence';
import { KEY_FUNCTIONS } from './key-functions';
import { shapeProblems } from './schema';

/** A compiled FHIRPath expression: a focus (a resource or one of fhirpath.js's nodes) to its nodes. */
export type Expression = (focus: unknown, env: Record<string | symbol, unknown>) => unknown[];

export interface ColumnPlan {
  name: string;
  /** Where the column is defined, for errors raised while rows are made. */
  at: string;
  path: Expression;
  collection: boolean;
  type?: string;
}

export interface SelectPlan {
  at: string;
  columns: ColumnPlan[];
  selects: SelectPlan[];
  unionAll: SelectPlan[];
  forEach?: Expression;
  /** forEach with one row of nulls when the collection is empty. */
  orNull: boolean;
  repeat?: Expression[];
  /** Every column this select produces, in output order (its own, then nested selects', then unionAll's). */
  names: string[];
}

export interface ViewPlan {
  resource: string;
  where: { at: string; path: Expression }[];
  select: SelectPlan;
  names: string[];
  /** Whether an expression calls medicationAdherence(): the run then loads each Patient's compartment. */
  adherence: boolean;
}

/** A ViewDefinition that cannot be run: each issue names the element at fault. */
export class ViewDefinitionError extends Error {
  constructor(readonly issues: OperationOutcomeIssue[]) {
    super(issues.map((i) => `${i.expression?.[0] ?? ''}: ${i.details?.text ?? ''}`).join('; '));
  }
}

const OPTIONS = { resolveInternalTypes: false, userInvocationTable: { ...KEY_FUNCTIONS, ...ADHERENCE_TABLE } };

/** Compiled views' expressions, shared across requests: the same text compiles to the same function. */
const cache = new Map<string, Expression>();
const CACHE_LIMIT = 10_000;

function compileExpression(text: string): Expression {
  let compiled = cache.get(text);
  if (!compiled) {
    compiled = compile(text, r4Model as Model, OPTIONS) as unknown as Expression;
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(text, compiled);
  }
  return compiled;
}

interface Select {
  column?: { name: string; path: string; collection?: boolean; type?: string }[];
  select?: Select[];
  forEach?: string;
  forEachOrNull?: string;
  repeat?: string[];
  unionAll?: Select[];
}

interface View {
  resource: string;
  constant?: Record<string, unknown>[];
  select: Select[];
  where?: { path: string }[];
}

class Compiler {
  readonly issues: OperationOutcomeIssue[] = [];
  /** Where the view calls medicationAdherence(), if it does. */
  adherenceAt?: string;
  constructor(private readonly constants: ConstantLiterals) {}

  expression(text: string, at: string): Expression {
    if (callsAdherence(text)) this.adherenceAt ??= at;
    try {
      return compileExpression(substituteConstants(text, this.constants));
    } catch (e) {
      this.issues.push(issue('error', 'invalid', `Not a usable FHIRPath expression: ${(e as Error).message}`, at));
      return () => [];
    }
  }

  select(select: Select, at: string): SelectPlan {
    const columns = (select.column ?? []).map((c, i) => ({
      name: c.name,
      at: `${at}.column[${i}]`,
      path: this.expression(c.path, `${at}.column[${i}].path`),
      collection: c.collection === true,
      type: c.type,
    }));
    const selects = (select.select ?? []).map((s, i) => this.select(s, `${at}.select[${i}]`));
    const unionAll = (select.unionAll ?? []).map((s, i) => this.select(s, `${at}.unionAll[${i}]`));
    const iteration = select.forEach ?? select.forEachOrNull;
    const key = select.forEach !== undefined ? 'forEach' : 'forEachOrNull';
    const plan: SelectPlan = {
      at,
      columns,
      selects,
      unionAll,
      orNull: select.forEachOrNull !== undefined,
      forEach: iteration !== undefined ? this.expression(iteration, `${at}.${key}`) : undefined,
      repeat: select.repeat?.map((r, i) => this.expression(r, `${at}.repeat[${i}]`)),
      names: [],
    };
    if (unionAll.length) {
      const first = unionAll[0].names.join(',');
      unionAll.forEach((branch, i) => {
        if (branch.names.join(',') !== first) {
          this.issues.push(
            issue(
              'error',
              'invalid',
              `Every branch of a unionAll must have the same columns in the same order: [${unionAll[0].names.join(', ')}] and [${branch.names.join(', ')}]`,
              `${at}.unionAll[${i}]`,
            ),
          );
        }
      });
    }
    plan.names = [...columns.map((c) => c.name), ...selects.flatMap((s) => s.names), ...(unionAll[0]?.names ?? [])];
    return plan;
  }
}

/**
 * Checks a ViewDefinition (its shape, its resource type, its constants, that its FHIRPath
 * expressions parse, that its column names are unique and its unionAll branches agree) and compiles
 * it. Throws ViewDefinitionError naming every problem found.
 */
export function compileView(input: unknown): ViewPlan {
  const shape = shapeProblems(input);
  if (shape.length) throw new ViewDefinitionError(shape);
  const view = input as View;
  const issues: OperationOutcomeIssue[] = [];
  if (!isResourceType(view.resource) || view.resource === 'ViewDefinition') {
    issues.push(
      issue('error', 'code-invalid', `${view.resource} is not an R4 resource type`, 'ViewDefinition.resource'),
    );
  }
  const constants = new Map<string, string>();
  (view.constant ?? []).forEach((c, i) => {
    const literal = literalOf(c);
    const at = `ViewDefinition.constant[${i}]`;
    if (typeof literal !== 'string') issues.push(issue('error', 'invalid', literal.error, at));
    else if (constants.has(String(c.name)))
      issues.push(issue('error', 'duplicate', `constant ${String(c.name)} is defined twice`, `${at}.name`));
    else constants.set(String(c.name), literal);
  });
  const compiler = new Compiler(constants);
  const select = compiler.select({ select: view.select }, 'ViewDefinition');
  const where = (view.where ?? []).map((w, i) => ({
    at: `ViewDefinition.where[${i}].path`,
    path: compiler.expression(w.path, `ViewDefinition.where[${i}].path`),
  }));
  issues.push(...compiler.issues);
  if (compiler.adherenceAt && view.resource !== 'Patient') {
    issues.push(
      issue(
        'error',
        'invalid',
        `${ADHERENCE_FUNCTION}() is evaluated on a Patient: a view calling it must have resource Patient`,
        compiler.adherenceAt,
      ),
    );
  }
  const seen = new Set<string>();
  for (const name of select.names) {
    if (seen.has(name))
      issues.push(issue('error', 'duplicate', `Column name ${name} is used twice`, 'ViewDefinition.select'));
    seen.add(name);
  }
  if (issues.length) throw new ViewDefinitionError(issues);
  return { resource: view.resource, where, select, names: select.names, adherence: compiler.adherenceAt !== undefined };
}
