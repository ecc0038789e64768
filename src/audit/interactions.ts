import type { Bundle } from '@medplum/fhirtypes';
import type { FhirError } from '../fhir/outcome';
import type { FhirRequest } from '../fhir/request';
import type { Interaction } from '../rest/context';
import type { AuditAction } from './balp';

/** BALP's actions: R for what shows data, E for what runs something (a query, an operation, a Bundle). */
export const ACTIONS: Record<Interaction['kind'], AuditAction> = {
  read: 'R',
  vread: 'R',
  'history-instance': 'R',
  'history-type': 'R',
  'history-system': 'R',
  // BALP Query: a search executes the query the client sent.
  'search-type': 'E',
  'search-system': 'E',
  create: 'C',
  update: 'U',
  patch: 'U',
  delete: 'D',
  operation: 'E',
  batch: 'E',
  transaction: 'E',
  capabilities: 'R',
};

/** The interaction an HTTP method asks for, where no route says more (a 401, an entry never routed). */
export const METHOD_INTERACTIONS: Record<string, Interaction['kind']> = {
  GET: 'read',
  HEAD: 'read',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** Longest outcomeDesc kept: the answer's first issue, never stored content (error texts hold none). */
export const MAX_OUTCOME_TEXT = 500;

/** The answer's first error, for outcomeDesc. */
export function outcomeText(error: FhirError): string {
  const first = error.outcome.issue?.find((i) => i.severity === 'error' || i.severity === 'fatal');
  const text = `HTTP ${error.status} ${first?.code ?? ''}: ${first?.details?.text ?? error.message}`.trim();
  return text.length > MAX_OUTCOME_TEXT ? `${text.slice(0, MAX_OUTCOME_TEXT)}...` : text;
}

/** One route serves both Bundle types: the subtype is what the Bundle says it is. */
export function bundleTypeOf(request: FhirRequest, interaction: Interaction): 'batch' | 'transaction' | undefined {
  if (interaction.kind !== 'transaction') return undefined;
  return (request.body as Bundle | undefined)?.type === 'batch' ? 'batch' : 'transaction';
}
