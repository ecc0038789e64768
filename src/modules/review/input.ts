import type { Parameters } from '@medplum/fhirtypes';
import { defaultPeriod, isIsoDate } from '../../checks';
import { badRequest } from '../../fhir/outcome';
import type { FhirRequest } from '../../fhir/request';

/** The inputs of Patient/[id]/$medication-review, all calendar dates (checks/OperationDefinition-medication-review.json). */
export interface ReviewRequest {
  date: string;
  periodStart: string;
  periodEnd: string;
}

const NAMES = ['date', 'periodStart', 'periodEnd'] as const;
type Name = (typeof NAMES)[number];

/**
 * Reads the inputs from the query (GET, or POST without a body or form-encoded) or from a Parameters
 * body (POST, valueDate), and settles the defaults: date is today (UTC), periodEnd is date and periodStart the
 * 180 days ending at periodEnd. Errors name the offending parameter in their expression: the bare name
 * for a query parameter, the Parameters path for a body.
 */
export function readReviewRequest(request: FhirRequest, today: string): ReviewRequest {
  const values: Partial<Record<Name, string>> = {};
  const where: Record<Name, string> = { date: 'date', periodStart: 'periodStart', periodEnd: 'periodEnd' };
  const body = request.body as { resourceType?: string } | URLSearchParams | null | undefined;
  if (body !== undefined && !(body instanceof URLSearchParams)) {
    if (body === null || typeof body !== 'object' || Array.isArray(body) || body.resourceType !== 'Parameters') {
      throw badRequest('The body of $medication-review must be a Parameters resource', 'Parameters');
    }
    const listed: unknown = (body as Parameters).parameter;
    if (listed !== undefined && !Array.isArray(listed)) {
      throw badRequest('Parameters.parameter must be an array', 'Parameters.parameter');
    }
    for (const [i, p] of ((listed ?? []) as Parameters['parameter'] & object).entries()) {
      const path = `Parameters.parameter[${i}]`;
      if (p === null || typeof p !== 'object') throw badRequest(`Parameter ${i} must be a JSON object`, path);
      if (!isName(p.name)) {
        const name = typeof p.name === 'string' ? p.name.slice(0, 100) : '';
        throw badRequest(`Unknown parameter "${name}" of $medication-review`, path);
      }
      if (typeof p.valueDate !== 'string') throw badRequest(`Parameter ${p.name} must be a valueDate`, path);
      if (values[p.name] !== undefined) throw badRequest(`Parameter ${p.name} is repeated`, path);
      values[p.name] = p.valueDate;
      where[p.name] = `Parameters.parameter.where(name='${p.name}')`;
    }
  } else {
    // A form-encoded POST carries the parameters as a query string would.
    const form = body instanceof URLSearchParams ? [...body.entries()] : [];
    for (const [name, value] of [...request.query, ...form]) {
      // _format, _pretty and other result controls are the HTTP layer's business.
      if (name.startsWith('_')) continue;
      if (!isName(name)) throw badRequest(`Unknown parameter "${name}" of $medication-review`, name);
      if (values[name] !== undefined) throw badRequest(`Parameter ${name} is repeated`, name);
      values[name] = value;
    }
  }
  for (const name of NAMES) {
    const value = values[name];
    if (value !== undefined && !isIsoDate(value)) {
      throw badRequest(`${name} must be a calendar date (YYYY-MM-DD), got "${value}"`, where[name]);
    }
  }
  const date = values.date ?? today;
  const periodEnd = values.periodEnd ?? date;
  const periodStart = values.periodStart ?? defaultPeriod(periodEnd).periodStart;
  if (periodEnd < periodStart) {
    throw badRequest(`periodEnd (${periodEnd}) is before periodStart (${periodStart})`, where.periodEnd);
  }
  return { date, periodStart, periodEnd };
}

function isName(name: unknown): name is Name {
  return typeof name === 'string' && (NAMES as readonly string[]).includes(name);
}
