import type {
  CodeSystem,
  OperationOutcome,
  OperationOutcomeIssue,
  Parameters,
  Resource,
  StructureDefinition,
  ValueSet,
} from '@medplum/fhirtypes';
import { allOk, badRequest, notFound, outcome } from '../fhir/outcome';
import { queryValue } from '../fhir/request';
import type { FhirRequest, FhirResponse } from '../fhir/request';
import type { Interceptor, OperationHandler, ServerContext } from '../rest/context';
import { checkJsonValue, resourceLimits } from '../fhir/json-limits';
import { requireEnvelope } from '../rest/envelope';
import { requireResourceBody } from '../rest/resource-body';
import type { Logger } from 'pino';
import type { Validator } from '../validation';
import { definitionsOf, type DefinitionChange } from './definitions-feed';
import { publishShipped } from './publish';

const CONFORMANCE_TYPES = new Set(['StructureDefinition', 'ValueSet', 'CodeSystem']);
type ConformanceResource = StructureDefinition | ValueSet | CodeSystem;
/** Code systems before the value sets that include them, value sets before the profiles that bind to them. */
const CONFORMANCE_ORDER = ['CodeSystem', 'ValueSet', 'StructureDefinition'];

/**
 * Applies one version of a stored conformance resource to the validator. A deleted one (or one whose
 * new version moved to another url) gives its url back to the shipped resource of that url, if any,
 * or to another stored resource with it; otherwise the url is no longer known.
 */
function conformanceApplier(validator: Validator, logger: Logger): (change: DefinitionChange) => void {
  const stored = new Map<string, ConformanceResource>();
  const use = (resource: ConformanceResource): boolean => {
    if (validator.conformanceProblems(resource).length) return false;
    validator.addConformanceResource(resource);
    return true;
  };
  const release = (old: ConformanceResource): void => {
    if (!old.url) return;
    validator.removeConformanceResource(old.resourceType, old.url);
    const sameUrl = (r: ConformanceResource) => r.resourceType === old.resourceType && r.url === old.url;
    const successor = validator.shipped.find(sameUrl) ?? [...stored.values()].find(sameUrl);
    if (successor) use(successor);
  };
  return (change) => {
    const key = `${change.type}/${change.id}`;
    const previous = change.previous as ConformanceResource | undefined;
    const resource = change.resource as ConformanceResource | undefined;
    stored.delete(key);
    if (previous && previous.url !== resource?.url) release(previous);
    if (!resource) return;
    // Checked before it was stored; one stored by an older server or another tool may still be unusable.
    if (use(resource)) stored.set(key, resource);
    else logger.warn({ definition: key }, 'stored conformance resource cannot be used for validation; skipped');
  };
}

/** The $validate answer: always 200 with an OperationOutcome, valid or not (R4 Resource-validate). */
function validationOutcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return issues.length ? outcome(issues) : allOk('No issues: the resource is valid');
}

/** Reads $validate's input: the resource itself, or a Parameters with resource, mode and profile. */
function readValidateInput(context: ServerContext, request: FhirRequest, type: string | undefined) {
  const body = request.body as Resource | null | undefined;
  let resource: Resource | undefined;
  let mode = queryValue(request, 'mode');
  let profile = queryValue(request, 'profile');
  if (body === null || (body !== undefined && (typeof body !== 'object' || Array.isArray(body)))) {
    throw badRequest('$validate takes a resource, or a Parameters with "resource", as its body');
  }
  if (body?.resourceType === 'Parameters') {
    const parameters = requireEnvelope<Parameters>(context, body, 'Parameters');
    for (const p of parameters.parameter ?? []) {
      if (p.name === 'resource') resource = p.resource;
      else if (p.name === 'mode') mode = p.valueCode ?? p.valueString;
      else if (p.name === 'profile') profile = p.valueUri ?? p.valueCanonical ?? p.valueString;
    }
  } else if (body !== undefined) {
    resource = body;
  }
  if (mode !== undefined && !['create', 'update', 'delete'].includes(mode)) {
    throw badRequest(`mode must be create, update or delete, got "${mode}"`, "Parameters.parameter.where(name='mode')");
  }
  if (resource && type) requireResourceBody(resource, type);
  return { resource, mode, profile };
}

/**
 * Validation as part of the pipeline: every write is checked (an interceptor, so handlers stay plain),
 * `$validate` answers at type and instance level, and conformance resources written at runtime are
 * used for validation at once.
 */
export async function registerValidation(context: ServerContext, validator: Validator): Promise<void> {
  const interceptor: Interceptor = {
    name: 'validation',
    checkWrite: (resource) => [
      ...validator.validate(resource),
      // A conformance resource the validator could not use would break validation after it is stored.
      ...(CONFORMANCE_TYPES.has(resource.resourceType)
        ? validator.conformanceProblems(resource as ConformanceResource)
        : []),
    ],
  };
  context.interceptors.push(interceptor);
  context.checkEnvelope = (resource) => validator.validateEnvelope(resource);

  const operation: OperationHandler = {
    name: 'validate',
    levels: ['type', 'instance'],
    affectsState: false,
    // Checking a resource before writing it: for whoever may create or update the type.
    requires: { permissions: ['c', 'u'] },
    definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
    async handle(request, ctx, target): Promise<FhirResponse> {
      const type = target.resourceType as string;
      const input = readValidateInput(ctx, request, type);
      if (input.mode === 'delete') {
        if (!target.id) throw badRequest('mode=delete needs an instance: POST [type]/[id]/$validate', 'mode');
        const current = await ctx.store.read(type, target.id, request.reads);
        if (!current || current.deleted) throw notFound(`${type}/${target.id} is not known`);
        return { status: 200, headers: {}, body: allOk(`${type}/${target.id} can be deleted`) };
      }
      let resource = input.resource;
      if (!resource && target.id) {
        const current = await ctx.store.read(type, target.id, request.reads);
        if (!current || current.deleted) throw notFound(`${type}/${target.id} is not known`);
        resource = current.resource;
      }
      if (!resource) throw badRequest('$validate needs a resource: the body, or a Parameters with "resource"');
      // Bounded like any resource to store, so that what it costs to validate is too.
      checkJsonValue(resource, resourceLimits(ctx.config));
      const issues = validator.validate(resource, { profiles: input.profile ? [input.profile] : [] });
      if (input.mode === 'update' && target.id && resource.id !== target.id) {
        issues.push({
          severity: 'error',
          code: 'invalid',
          details: { text: `The resource id "${resource.id ?? ''}" does not match the id in the URL, "${target.id}"` },
          expression: [`${type}.id`],
        });
      }
      return { status: 200, headers: {}, body: validationOutcome(issues) };
    },
  };
  context.operations.push(operation);

  context.capabilities.push({ supportedProfiles: (type) => validator.profilesFor(type) });

  // Conformance resources stored earlier (at runtime, possibly by another server) take part too, and
  // those any server commits from now on: one code path for all of them (src/modules/definitions-feed).
  await definitionsOf(context).subscribe(CONFORMANCE_ORDER, conformanceApplier(validator, context.logger));
  await publishShipped(context, validator.shipped);
}
