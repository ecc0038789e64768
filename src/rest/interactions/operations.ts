import { FhirError, issue, methodNotAllowed, outcome } from '../../fhir/outcome';
import type { FhirRequest, FhirResponse } from '../../fhir/request';
import type { OperationLevel, ServerContext } from '../context';
import { requireValidId } from '../resource-body';

/** Routes `$name` at system, type or instance level to the module that registered it. */
export async function invokeOperation(
  request: FhirRequest,
  context: ServerContext,
  params: Record<string, string>,
): Promise<FhirResponse> {
  const level: OperationLevel = params.id ? 'instance' : params.type ? 'type' : 'system';
  if (params.type && params.id) requireValidId(params.id, params.type);
  const operation = context.operations.find(
    (op) =>
      op.name === params.op &&
      op.levels.includes(level) &&
      (level === 'system' || !op.resourceTypes || op.resourceTypes.includes(params.type)),
  );
  if (!operation) {
    const where =
      level === 'system' ? 'at system level' : `on ${params.type}${level === 'instance' ? ' instances' : ''}`;
    throw new FhirError(
      404,
      outcome([issue('error', 'not-supported', `Operation $${params.op} is not supported ${where}`)]),
    );
  }
  if (request.method === 'GET' && operation.affectsState) {
    throw methodNotAllowed(`$${operation.name} changes data and must be invoked with POST`);
  }
  if (request.method === 'DELETE' && !operation.acceptsDelete) {
    throw methodNotAllowed(`$${operation.name} cannot be invoked with DELETE`);
  }
  return operation.handle(request, context, { level, resourceType: params.type, id: params.id });
}
