import type {
  DetectedIssue,
  Parameters,
  ParametersParameter,
  Patient,
  Reference,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { fromDay, isIsoDate, toDay } from './dates';
import { MEDICATION_CLASS_SYSTEM, type MedicationClassRegistry } from './classes';
import { CHECKS_SYSTEM, type CheckRegistry, type CompiledCheck } from './check-registry';
import { ReviewContext, type ReviewConfig } from './context';
import type { ShiftedSupply } from './supplies';
import { domainFunctions } from './fhirpath-functions';

/**
 * Patient/[id]/$medication-review without the database: given the patient's compartment (plus referenced
 * Medications), compute one `adherence` parameter per adherence-tracked class filled in the period and
 * one `finding` parameter per check that fires (a DetectedIssue or a Task carrying the check code, the
 * patient, a readable detail and references to the evidence).
 */

export interface ReviewInput {
  patient: Patient;
  resources: Resource[];
  /** Review date (YYYY-MM-DD); the caller defaults it to today. */
  date: string;
  /** Default: the 180 days ending at `date`. */
  periodStart?: string;
  periodEnd?: string;
}

/** Bad input (invalid date or period): the HTTP layer answers 400 with an OperationOutcome. */
export class ReviewInputError extends Error {}

/** A check that failed while evaluating (a bad runtime-added definition, usually). */
export class CheckEvaluationError extends Error {
  constructor(
    readonly checkCode: string,
    cause: unknown,
  ) {
    super(`Check ${checkCode} failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

export const DEFAULT_PERIOD_DAYS = 180;

export function defaultPeriod(date: string): { periodStart: string; periodEnd: string } {
  const day = toDay(date);
  if (day === undefined) throw new ReviewInputError(`Invalid date ${date}`);
  return { periodStart: fromDay(day - DEFAULT_PERIOD_DAYS + 1), periodEnd: date };
}

const MEDICATION_TYPES = new Set([
  'MedicationRequest',
  'MedicationDispense',
  'MedicationStatement',
  'MedicationAdministration',
  'Medication',
]);

type Finding = DetectedIssue | Task;

/**
 * A finding with what it is about: the check and the subject it was evaluated for (a class key, a
 * resource, a care-plan activity; empty for a check that runs once per patient). Standing findings
 * (src/modules/findings) are keyed by patient, check and subject.
 */
export interface SubjectFinding {
  check: string;
  subject: string;
  finding: Finding;
}

export function reviewPatient(
  input: ReviewInput,
  classes: MedicationClassRegistry,
  checks: CheckRegistry,
  config: ReviewConfig = {},
): Parameters {
  const { adherence, findings } = runReview(input, classes, checks, config);
  return {
    resourceType: 'Parameters',
    parameter: [...adherence, ...findings.map((f) => ({ name: 'finding', resource: f.finding }))],
  };
}

/** The findings of a review with their subjects (what reviewPatient answers as `finding` parameters). */
export function reviewFindings(
  input: ReviewInput,
  classes: MedicationClassRegistry,
  checks: CheckRegistry,
  config: ReviewConfig = {},
): SubjectFinding[] {
  return runReview(input, classes, checks, config, false).findings;
}

/**
 * The adherence parameters of a review (what reviewPatient answers as `adherence`), without running the
 * checks: the PDC of every class the patient has fills (or prescriptions) of.
 */
export function reviewAdherence(
  input: ReviewInput,
  classes: MedicationClassRegistry,
  config: ReviewConfig = {},
): ParametersParameter[] {
  const ctx = reviewContext(input, classes, config);
  return ctx.filledClasses().map((key) => adherenceParameter(ctx, key));
}

function reviewContext(input: ReviewInput, classes: MedicationClassRegistry, config: ReviewConfig): ReviewContext {
  const date = input.date;
  if (!isIsoDate(date)) throw new ReviewInputError(`date must be a calendar date (YYYY-MM-DD), got ${date}`);
  const defaults = defaultPeriod(date);
  const periodStart = input.periodStart ?? defaults.periodStart;
  const periodEnd = input.periodEnd ?? defaults.periodEnd;
  if (!isIsoDate(periodStart) || !isIsoDate(periodEnd))
    throw new ReviewInputError('periodStart and periodEnd must be calendar dates');
  if (periodEnd < periodStart) throw new ReviewInputError('periodEnd is before periodStart');
  return new ReviewContext(input.patient, input.resources, date, periodStart, periodEnd, classes, config);
}

function runReview(
  input: ReviewInput,
  classes: MedicationClassRegistry,
  checks: CheckRegistry,
  config: ReviewConfig,
  withAdherence = true,
): { adherence: ParametersParameter[]; findings: SubjectFinding[] } {
  const ctx = reviewContext(input, classes, config);
  const adherence: ParametersParameter[] = [];
  if (withAdherence) {
    for (const key of ctx.filledClasses()) adherence.push(adherenceParameter(ctx, key));
    const mme = mmeParameter(ctx);
    if (mme) adherence.push(mme);
  }
  const findings: SubjectFinding[] = [];
  for (const check of checks.list()) findings.push(...runCheck(check, ctx));
  return { adherence, findings };
}

function adherenceParameter(ctx: ReviewContext, key: string): ParametersParameter {
  const r = ctx.pdc(key);
  const cls = ctx.requireClass(key);
  const part: ParametersParameter[] = [
    { name: 'medicationClass', valueCoding: { system: MEDICATION_CLASS_SYSTEM, code: cls.key, display: cls.title } },
    // The treatment period (index fill to period end): daysInPeriod and pdc are computed over it.
    { name: 'periodStart', valueDate: r.treatmentStart ?? ctx.periodStart },
    { name: 'periodEnd', valueDate: ctx.periodEnd },
    { name: 'daysInPeriod', valueInteger: r.daysInPeriod },
    { name: 'daysCovered', valueInteger: r.daysCovered },
    { name: 'pdc', valueDecimal: Math.round(r.pdc * 10000) / 10000 },
    { name: 'adherent', valueBoolean: r.adherent },
  ];
  if (r.lastCoveredDay) part.push({ name: 'lastCoveredDay', valueDate: r.lastCoveredDay });
  // Beyond the issue's list: PQA eligibility (two fills on different dates) and the prescription stand-in flag.
  part.push({ name: 'eligible', valueBoolean: r.eligible });
  if (r.prescriptionBased) part.push({ name: 'prescriptionBased', valueBoolean: true });
  // The counted supplies after PQA shifting and the uncovered days they leave: what a timeline draws,
  // so a client shows the server's coverage rather than recomputing it (the clinician page does).
  for (const s of r.supplies) {
    part.push({
      name: 'supply',
      part: [
        { name: 'reference', valueReference: { reference: s.reference } },
        { name: 'fillDate', valueDate: fromDay(s.fillDay) },
        { name: 'start', valueDate: fromDay(s.startDay) },
        { name: 'end', valueDate: fromDay(s.endDay) },
      ],
    });
  }
  for (const [start, end] of gapsOf(r.supplies, toDay(r.treatmentStart), toDay(ctx.periodEnd))) {
    part.push({
      name: 'gap',
      part: [
        { name: 'start', valueDate: fromDay(start) },
        { name: 'end', valueDate: fromDay(end) },
      ],
    });
  }
  return { name: 'adherence', part };
}

/** Runs of days in [from, to] that no supply covers; their lengths add up to daysInPeriod - daysCovered. */
function gapsOf(
  supplies: readonly ShiftedSupply[],
  from: number | undefined,
  to: number | undefined,
): [number, number][] {
  if (from === undefined || to === undefined) return [];
  const gaps: [number, number][] = [];
  let next = from;
  for (const s of [...supplies].sort((a, b) => a.startDay - b.startDay)) {
    if (s.startDay > next && next <= to) gaps.push([next, Math.min(s.startDay - 1, to)]);
    next = Math.max(next, s.endDay + 1);
  }
  if (next <= to) gaps.push([next, to]);
  return gaps;
}

/** Daily MME of the active opioid prescriptions on the review date (OUD treatment left out), when there are any. */
function mmeParameter(ctx: ReviewContext): ParametersParameter | undefined {
  const { total, lines } = ctx.mme();
  if (!lines.length) return undefined;
  return {
    name: 'mme',
    part: [
      { name: 'total', valueDecimal: Math.round(total * 100) / 100 },
      ...lines.map((l) => ({
        name: 'request',
        part: [
          { name: 'reference', valueReference: { reference: l.reference } },
          { name: 'mme', valueDecimal: Math.round(l.lines.reduce((sum, x) => sum + x.mme, 0) * 100) / 100 },
        ],
      })),
    ],
  };
}

type Env = Record<string, unknown>;

function evaluate(
  check: CompiledCheck,
  expr: NonNullable<CompiledCheck['detail']>,
  ctx: ReviewContext,
  env: Env,
): unknown[] {
  try {
    return expr(ctx.patient, env, { userInvocationTable: table(ctx) }) as unknown[];
  } catch (e) {
    throw new CheckEvaluationError(check.code, e);
  }
}

const tables = new WeakMap<ReviewContext, ReturnType<typeof domainFunctions>>();
function table(ctx: ReviewContext): ReturnType<typeof domainFunctions> {
  let t = tables.get(ctx);
  if (!t) tables.set(ctx, (t = domainFunctions(ctx)));
  return t;
}

function runCheck(check: CompiledCheck, ctx: ReviewContext): SubjectFinding[] {
  const base: Env = {
    resources: ctx.resources,
    patient: ctx.patient,
    date: ctx.date,
    periodStart: ctx.periodStart,
    periodEnd: ctx.periodEnd,
    ...check.parameters,
    ...ctx.config.parameters?.[check.code],
  };
  const items: unknown[] = check.forEach ? evaluate(check, check.forEach, ctx, base) : [undefined];
  const findings: SubjectFinding[] = [];
  for (const item of items) {
    const env: Env = item === undefined ? base : { ...base, item };
    const fires = check.conditions.every((c) => {
      const r = evaluate(check, c, ctx, env);
      return r.length === 1 && r[0] === true;
    });
    if (!fires) continue;
    const detail = check.detail ? evaluate(check, check.detail, ctx, env).map(String).join(' ') : check.display;
    const evidence = evidenceReferences(ctx, item, check.evidence ? evaluate(check, check.evidence, ctx, env) : []);
    const first = (e: CompiledCheck['severity']): string | undefined =>
      e ? (evaluate(check, e, ctx, env)[0] as string | undefined) : undefined;
    findings.push({
      check: check.code,
      subject: subjectOf(ctx, item),
      finding:
        check.output === 'DetectedIssue'
          ? detectedIssue(check, ctx, detail, evidence, first(check.severity))
          : task(check, ctx, detail, evidence, first(check.priority)),
    });
  }
  return findings;
}

/**
 * What a check's item names, stable across reviews of the same facts: a class key as is, a new start
 * by its class, a resource as Type/id, an element inside a resource (a care-plan activity) as
 * Type/id#path by position. A check without items has one subject per patient ('').
 */
function subjectOf(ctx: ReviewContext, item: unknown): string {
  if (item === undefined) return '';
  if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') return String(item);
  if (typeof item !== 'object' || item === null) return '';
  const r = item as { resourceType?: unknown; id?: unknown; classKey?: unknown };
  if (typeof r.resourceType === 'string' && typeof r.id === 'string') return `${r.resourceType}/${r.id}`;
  if (typeof r.classKey === 'string') return r.classKey;
  for (const owner of ctx.resources) {
    const path = pathTo(owner, item, '', 0);
    if (path !== undefined) return `${owner.resourceType}/${owner.id}#${path}`;
  }
  return '';
}

function pathTo(value: unknown, node: object, path: string, depth: number): string | undefined {
  if (value === node) return path;
  if (depth > 6 || typeof value !== 'object' || value === null) return undefined;
  for (const [key, child] of Object.entries(value)) {
    const found = pathTo(
      child,
      node,
      Array.isArray(value) ? `${path}[${key}]` : path ? `${path}.${key}` : key,
      depth + 1,
    );
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Evidence as references: resources and `Type/id` strings from the expression, plus the item's own resource. */
function evidenceReferences(ctx: ReviewContext, item: unknown, values: unknown[]): Reference[] {
  const keys: string[] = [];
  const add = (v: unknown): void => {
    if (typeof v === 'string' && /^[A-Za-z]+\/[A-Za-z0-9\-.]+$/.test(v)) keys.push(v);
    else if (typeof v === 'object' && v !== null) {
      const r = v as { resourceType?: string; id?: string; reference?: string };
      if (r.resourceType && r.id) keys.push(`${r.resourceType}/${r.id}`);
      else if (typeof r.reference === 'string') keys.push(r.reference);
      else {
        const owner = ownerOf(ctx, v);
        if (owner) keys.push(owner);
      }
    }
  };
  add(item);
  values.forEach(add);
  return [...new Set(keys)].map((reference) => {
    const res = ctx.index.get(reference);
    return res ? { reference, type: res.resourceType } : { reference };
  });
}

/** The resource that contains a nested element (e.g. the CarePlan of an activity), found by identity. */
function ownerOf(ctx: ReviewContext, node: object): string | undefined {
  const contains = (value: unknown, depth: number): boolean => {
    if (value === node) return true;
    if (depth > 6 || typeof value !== 'object' || value === null) return false;
    return Object.values(value).some((v) => contains(v, depth + 1));
  };
  const owner = ctx.resources.find((r) => contains(r, 0));
  return owner ? `${owner.resourceType}/${owner.id}` : undefined;
}

function findingId(check: CompiledCheck, ctx: ReviewContext, evidence: Reference[], detail: string): string {
  // Stable across repeated reviews of the same facts, so a caller can store findings idempotently.
  const text = [check.code, ctx.patient.id, ...evidence.map((e) => e.reference), evidence.length ? '' : detail].join(
    '|',
  );
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `${check.code}-${h.toString(16).padStart(8, '0')}`;
}

function checkConcept(check: CompiledCheck): DetectedIssue['code'] {
  return { coding: [{ system: CHECKS_SYSTEM, code: check.code, display: check.display }], text: check.display };
}

function detectedIssue(
  check: CompiledCheck,
  ctx: ReviewContext,
  detail: string,
  evidence: Reference[],
  severity: string | undefined,
): DetectedIssue {
  const id = findingId(check, ctx, evidence, detail);
  const implicated = evidence.filter((e) => MEDICATION_TYPES.has(e.type ?? e.reference?.split('/')[0] ?? ''));
  return {
    resourceType: 'DetectedIssue',
    id,
    identifier: [{ system: CHECKS_SYSTEM, value: id }],
    status: 'preliminary',
    code: checkConcept(check),
    severity: severity === 'high' || severity === 'moderate' || severity === 'low' ? severity : undefined,
    patient: { reference: `Patient/${ctx.patient.id}` },
    identifiedDateTime: ctx.date,
    detail,
    ...(implicated.length ? { implicated } : {}),
    ...(evidence.length ? { evidence: [{ detail: evidence }] } : {}),
  };
}

function task(
  check: CompiledCheck,
  ctx: ReviewContext,
  detail: string,
  evidence: Reference[],
  priority: string | undefined,
): Task {
  const id = findingId(check, ctx, evidence, detail);
  return {
    resourceType: 'Task',
    id,
    identifier: [{ system: CHECKS_SYSTEM, value: id }],
    status: 'requested',
    intent: 'order',
    priority:
      priority === 'routine' || priority === 'urgent' || priority === 'asap' || priority === 'stat'
        ? priority
        : undefined,
    code: checkConcept(check),
    description: detail,
    for: { reference: `Patient/${ctx.patient.id}` },
    authoredOn: ctx.date,
    ...(evidence.length ? { focus: evidence[0] } : {}),
    ...(evidence.length
      ? { input: evidence.map((valueReference) => ({ type: { text: 'evidence' }, valueReference })) }
      : {}),
  };
}
