import type { Patient, PlanDefinition, ValueSet } from '@medplum/fhirtypes';
import { CheckEvaluationError, ReviewInputError, reviewPatient } from '../checks';
import { badRequest, FhirError, gone, issue, notFound, outcome } from '../fhir/outcome';
import type { FhirResponse } from '../fhir/request';
import type { Interceptor, OperationHandler, ServerContext } from '../rest/context';
import { definitionsOf, type DefinitionChange } from './definitions-feed';
import { loadCompartment } from './review/compartment';
import { ReviewDefinitions } from './review/definitions';
import { readReviewRequest } from './review/input';
import { requireEnvelope } from '../rest/envelope';
import type { Reader } from '../store/read-view';

/** A JSON body (not a form): a Parameters to validate before it is read. */
const isResourceBody = (body: unknown): boolean =>
  typeof body === 'object' && body !== null && !Array.isArray(body) && !(body instanceof URLSearchParams);

/** Canonical of checks/OperationDefinition-medication-review.json. */
export const MEDICATION_REVIEW_DEFINITION = 'https://meds-fhir.org/fhir/OperationDefinition/medication-review';

/**
 * Patient/[id]/$medication-review (issue 6): loads the patient's compartment and hands it to the
 * database-free checks engine (src/checks). Check PlanDefinitions and class ValueSets written through
 * the API (by any server sharing the database) take part within about a second, in the committing
 * server at once, and at every start; a check definition the engine cannot
 * compile or run is refused before it is stored (checkWrite, 422).
 */
export async function registerMedicationReview(context: ServerContext): Promise<ReviewDefinitions> {
  const definitions = new ReviewDefinitions(context.logger);

  const interceptor: Interceptor = {
    name: 'medication-review',
    checkWrite: (resource) => {
      try {
        if (resource.resourceType === 'PlanDefinition') return definitions.planDefinitionProblems(resource);
        if (resource.resourceType === 'ValueSet') return definitions.valueSetProblems(resource);
      } catch (e) {
        // Malformed structure (arrays that are not arrays, ...): the validation interceptor names the
        // element; this only keeps the write from being stored as a definition no review could use.
        return [issue('error', 'structure', `Not usable by $medication-review: ${(e as Error).message}`)];
      }
      return [];
    },
  };
  context.interceptors.push(interceptor);

  const operation: OperationHandler = {
    name: 'medication-review',
    levels: ['instance'],
    resourceTypes: ['Patient'],
    affectsState: false,
    requires: { permissions: ['r'], type: 'Patient' },
    definition: MEDICATION_REVIEW_DEFINITION,
    async handle(request, ctx, target): Promise<FhirResponse> {
      // The inputs are read defensively (naming the parameter at fault), then the whole body is
      // validated as a Parameters before anything uses them.
      const input = readReviewRequest(request, new Date().toISOString().slice(0, 10));
      if (isResourceBody(request.body)) requireEnvelope(ctx, request.body, 'Parameters');
      const id = target.id as string;
      const current = await ctx.store.read('Patient', id, request.reads);
      if (!current) throw notFound(`Patient/${id} is not known`, 'Patient.id');
      if (current.deleted) throw gone(`Patient/${id} has been deleted`, 'Patient.id');
      const patient = current.resource as Patient;
      // One consistent pair of registries for the whole review, whatever runtime writes happen meanwhile.
      const { classes, checks, types } = definitions;
      const reader = request.reads ?? ctx.store.directReader();
      const resources = await loadCompartment(reader, id, types);
      try {
        const body = reviewPatient({ patient, resources: [patient, ...resources], ...input }, classes, checks);
        // Only a requester whose access rules filter some type can have had records withheld: the others'
        // reviews are spared two counts per type.
        const restricted = request.access && types.some((t) => request.access?.filter(t, ['r', 's']) !== undefined);
        if (restricted && request.reads && (await withheldFrom(request.reads, ctx.store.directReader(), id, types))) {
          body.parameter = [...(body.parameter ?? []), { name: 'withheld', valueBoolean: true }];
        }
        return { status: 200, headers: {}, body };
      } catch (e) {
        if (e instanceof ReviewInputError) throw badRequest(e.message, 'date');
        if (e instanceof CheckEvaluationError) throw checkFailed(e, checks.get(e.checkCode)?.source);
        throw e;
      }
    },
  };
  context.operations.push(operation);

  // Definitions stored earlier (at runtime, possibly through another server) take part too, and those
  // any server commits from now on: one code path for all of them (src/modules/definitions-feed).
  await definitionsOf(context).subscribe(['ValueSet', 'PlanDefinition'], (change) => apply(definitions, change));
  return definitions;
}

/**
 * Whether the requester's access rules hid some of the patient's records from the review (Part 2 or
 * other sensitive labels without consent or clearance, scopes that leave types out): a clinician must
 * be told the review is partial rather than read it as complete. Only the fact is disclosed, not what
 * or how many.
 */
async function withheldFrom(
  visible: Reader,
  all: Reader,
  patientId: string,
  types: readonly string[],
): Promise<boolean> {
  const filter = { compartments: `Patient/${patientId}`, deleted: { $ne: true } };
  for (const type of types) {
    const [seen, stored] = await Promise.all([visible.count(type, filter), all.count(type, filter)]);
    if (seen < stored) return true;
  }
  return false;
}

function apply(definitions: ReviewDefinitions, change: DefinitionChange): void {
  if (change.type === 'PlanDefinition') {
    definitions.setPlanDefinition(change.id, change.resource as PlanDefinition | undefined);
  } else if (change.type === 'ValueSet') {
    definitions.setValueSet(change.id, change.resource as ValueSet | undefined);
  }
}

/**
 * A check that throws while evaluating is a defect of the server's configuration (usually a runtime
 * check whose expression fails on data its dry run did not have), not of the request: 500, naming the
 * check and its PlanDefinition so an administrator can fix or retire it. A partial review is not sent:
 * a clinician must not read "no findings" where a check did not run.
 */
function checkFailed(e: CheckEvaluationError, source: string | undefined): FhirError {
  const text = `The review could not be completed: ${e.message}${source ? ` (check defined by ${source})` : ''}`;
  return new FhirError(
    500,
    outcome([issue('error', 'exception', text, `PlanDefinition.action.where(code.coding.code = '${e.checkCode}')`)]),
  );
}
