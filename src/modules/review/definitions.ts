import type { OperationOutcomeIssue, Patient, PlanDefinition, ValueSet } from '@medplum/fhirtypes';
import type { Logger } from 'pino';
import {
  CHECKS_SYSTEM,
  CheckDefinitionError,
  CheckEvaluationError,
  CheckRegistry,
  MEDICATION_CLASS_EXTENSION,
  type MedicationClassRegistry,
  classOptionsOf,
  loadChecks,
  loadMedicationClasses,
  reviewPatient,
} from '../../checks';
import { patientCompartmentParams } from '../../fhir/definitions';
import { issue } from '../../fhir/outcome';

/**
 * The types a review loads from the patient's compartment: what the engine reads itself (medication
 * resources, Conditions for the OUD diagnosis) and what the shipped checks name with ofType().
 */
export const REVIEW_TYPES = [
  'MedicationRequest',
  'MedicationDispense',
  'MedicationStatement',
  'MedicationAdministration',
  'Observation',
  'CarePlan',
  'Encounter',
  'Condition',
];

/**
 * The classes and checks one server reviews with: the shipped ones (terminology/, checks/) plus those
 * stored through the API. Runtime changes rebuild the registries from scratch (shipped first, then the
 * stored ones in id order), so an update or deletion undoes exactly what the previous version added,
 * and a deleted override of a shipped check brings the shipped one back. Rebuilding costs tens of
 * milliseconds and happens only when a check PlanDefinition or a ValueSet is written.
 *
 * Reviews read `classes` and `checks` once at their start; a rebuild swaps the references, so a review
 * in flight keeps a consistent pair.
 */
export class ReviewDefinitions {
  classes: MedicationClassRegistry;
  checks: CheckRegistry;
  private readonly storedChecks = new Map<string, PlanDefinition>();
  private readonly storedValueSets = new Map<string, ValueSet>();
  /** REVIEW_TYPES plus the compartment types runtime checks name with ofType(Type). */
  types: string[] = REVIEW_TYPES;

  constructor(private readonly logger: Logger) {
    this.classes = loadMedicationClasses();
    this.checks = loadChecks();
  }

  /** Records a stored (or deleted, when resource is undefined) PlanDefinition; true when the checks changed. */
  setPlanDefinition(id: string, resource: PlanDefinition | undefined): boolean {
    const wasCheck = this.storedChecks.delete(id);
    if (resource && isCheckDefinition(resource)) this.storedChecks.set(id, resource);
    else if (!wasCheck) return false;
    this.rebuildChecks();
    return true;
  }

  /** Records a stored (or deleted) ValueSet: every one with a url can be named by checks; marked ones are classes. */
  setValueSet(id: string, resource: ValueSet | undefined): void {
    const had = this.storedValueSets.delete(id);
    if (resource?.url) this.storedValueSets.set(id, resource);
    else if (!had) return;
    this.rebuildClasses();
  }

  private rebuildChecks(): void {
    const registry = loadChecks();
    for (const [id, pd] of sortedById(this.storedChecks)) {
      try {
        registry.add(pd);
      } catch (e) {
        // Stored before write-time checking existed, or by another tool: skip it rather than stop reviews.
        this.logger.warn({ err: e, planDefinition: id }, 'stored check definition skipped');
      }
    }
    this.checks = registry;
    this.types = typesNamedBy([...this.storedChecks.values()]);
  }

  private rebuildClasses(): void {
    const registry = loadMedicationClasses();
    for (const [id, vs] of sortedById(this.storedValueSets)) {
      try {
        registry.addValueSet(vs, classOptionsOf(vs));
      } catch (e) {
        this.logger.warn({ err: e, valueSet: id }, 'stored value set skipped');
      }
    }
    this.classes = registry;
  }

  /** Write-time problems of a check PlanDefinition (422 before it is stored); [] for any other PlanDefinition. */
  planDefinitionProblems(pd: PlanDefinition): OperationOutcomeIssue[] {
    if (!isCheckDefinition(pd)) return [];
    const issues: OperationOutcomeIssue[] = [];
    const scratch = new CheckRegistry();
    (pd.action ?? []).forEach((action, i) => {
      try {
        scratch.add({ resourceType: 'PlanDefinition', status: 'active', url: pd.url, action: [action] });
      } catch (e) {
        // Anything else thrown here comes from a structure the R4 validation reports as well.
        const message = e instanceof CheckDefinitionError ? e.message : `not readable (${(e as Error).message})`;
        issues.push(issue('error', 'business-rule', `Check definition: ${message}`, `PlanDefinition.action[${i}]`));
      }
    });
    if (issues.length) return issues;
    // A dry run on a patient with no data catches what compiling cannot: unknown domain functions,
    // unknown class keys, type errors on the paths every evaluation takes.
    try {
      reviewPatient(
        { patient: DRY_RUN_PATIENT, resources: [DRY_RUN_PATIENT], date: '2026-01-01' },
        this.classes,
        scratch,
      );
    } catch (e) {
      if (!(e instanceof CheckEvaluationError)) throw e;
      const index = (pd.action ?? []).findIndex((a) =>
        a.code?.some((c) => c.coding?.some((x) => x.system === CHECKS_SYSTEM && x.code === e.checkCode)),
      );
      issues.push(
        issue('error', 'business-rule', `Check definition fails on a patient without data: ${e.message}`, [
          `PlanDefinition.action[${Math.max(index, 0)}]`,
        ]),
      );
    }
    return issues;
  }

  /** Write-time problems of a ValueSet the reviews would use (a class, or one the shipped checks name). */
  valueSetProblems(vs: ValueSet): OperationOutcomeIssue[] {
    const options = classOptionsOf(vs);
    if (!options && !(vs.url && this.classes.getValueSet(vs.url))) return [];
    const issues: OperationOutcomeIssue[] = [];
    const marker = `ValueSet.extension('${MEDICATION_CLASS_EXTENSION}')`;
    if (!vs.url) issues.push(issue('error', 'required', 'A medication class ValueSet needs a url', 'ValueSet.url'));
    if (options) {
      const key = options.key ?? vs.id;
      if (!key || !/^[A-Za-z0-9][A-Za-z0-9\-.]{0,63}$/.test(key)) {
        issues.push(issue('error', 'value', `Medication class key "${key ?? ''}" is not a valid key`, marker));
      } else {
        const existing = this.classes.getClass(key);
        if (existing && existing.valueSetUrl !== vs.url) {
          issues.push(
            issue(
              'error',
              'business-rule',
              `Medication class "${key}" already exists with value set ${existing.valueSetUrl}; update that ValueSet or choose another key`,
              marker,
            ),
          );
        }
      }
    }
    // Membership is computed locally, so every included value set must be one the server has.
    (vs.compose?.include ?? []).forEach((include, i) =>
      (include.valueSet ?? []).forEach((url, j) => {
        if (url !== vs.url && !this.classes.getValueSet(url)) {
          issues.push(
            issue(
              'error',
              'not-found',
              `Included value set ${url} is not known to the server`,
              `ValueSet.compose.include[${i}].valueSet[${j}]`,
            ),
          );
        }
      }),
    );
    return issues;
  }
}

const DRY_RUN_PATIENT: Patient = { resourceType: 'Patient', id: 'dry-run' };

/** A PlanDefinition is a check definition when one of its actions carries a code of the checks system. */
export function isCheckDefinition(pd: PlanDefinition): boolean {
  return (pd.action ?? []).some((a) => a.code?.some((c) => c.coding?.some((x) => x.system === CHECKS_SYSTEM)));
}

function typesNamedBy(definitions: PlanDefinition[]): string[] {
  const types = new Set(REVIEW_TYPES);
  const compartment = patientCompartmentParams();
  for (const match of JSON.stringify(definitions).matchAll(/ofType\(\s*(?:FHIR\.)?([A-Z][A-Za-z]+)\s*\)/g)) {
    if (compartment.has(match[1])) types.add(match[1]);
  }
  return [...types];
}

function sortedById<T>(map: Map<string, T>): [string, T][] {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
