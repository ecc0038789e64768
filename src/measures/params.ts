import type { Parameters } from '@medplum/fhirtypes';
import { isIsoDate } from '../checks/dates';
import { ID_PATTERN } from '../fhir/definitions';
import { badRequest } from '../fhir/outcome';
import type { FhirRequest } from '../fhir/request';
import type { ReportRequest, ReportType } from './report';

/** The inputs of $evaluate-measure (R4 Measure-evaluate-measure), checked. */
export interface EvaluateRequest extends ReportRequest {
  /** Type level: the canonical url (optionally `|version`) of the Measure. */
  measure?: string;
}

const NAMES = ['periodStart', 'periodEnd', 'reportType', 'subject', 'practitioner', 'measure'] as const;
type Name = (typeof NAMES)[number];
const REPORT_TYPES: ReportType[] = ['subject', 'subject-list', 'population'];
/** Parameters every FHIR request may carry, which say nothing about the evaluation. */
const GENERAL = new Set(['_format', '_pretty']);
const isName = (name: unknown): name is Name => typeof name === 'string' && (NAMES as readonly string[]).includes(name);

/** A date, or a dateTime reduced to its day (the measures count whole days). */
function day(value: string): string | undefined {
  const d = value.slice(0, 10);
  return isIsoDate(d) && (value.length === 10 || /^T\d{2}:\d{2}/.test(value.slice(10))) ? d : undefined;
}

function reference(value: string, types: string[]): string | undefined {
  const match = /^(?:.*\/)?([A-Z][A-Za-z]+)\/([^/]+)$/.exec(value);
  return match && types.includes(match[1]) && ID_PATTERN.test(match[2]) ? `${match[1]}/${match[2]}` : undefined;
}

/**
 * Reads the inputs from the query (GET) or a Parameters body (POST). Errors name the parameter: the
 * query name for GET, `Parameters.parameter.where(name='…')` for a body.
 */
export function readEvaluateRequest(request: FhirRequest, typeLevel: boolean): EvaluateRequest {
  const values: Partial<Record<Name, string>> = {};
  const where = (name: string, body: boolean) => (body ? `Parameters.parameter.where(name='${name}')` : name);
  const body = request.body as Parameters | URLSearchParams | undefined;
  const fromBody = body !== undefined && !(body instanceof URLSearchParams);
  if (fromBody) {
    if (typeof body !== 'object' || body === null || Array.isArray(body) || body.resourceType !== 'Parameters') {
      throw badRequest('The body of $evaluate-measure must be a Parameters resource', 'Parameters');
    }
    for (const [i, p] of (body.parameter ?? []).entries()) {
      if (!isName(p?.name)) {
        throw badRequest(
          `Unknown parameter "${String(p?.name).slice(0, 100)}" of $evaluate-measure`,
          `Parameters.parameter[${i}]`,
        );
      }
      const value =
        p.valueDate ??
        p.valueDateTime ??
        p.valueString ??
        p.valueCode ??
        p.valueUri ??
        p.valueCanonical ??
        p.valueReference?.reference;
      if (typeof value !== 'string') throw badRequest(`Parameter ${p.name} needs a value`, where(p.name, true));
      if (values[p.name] !== undefined) throw badRequest(`Parameter ${p.name} is repeated`, where(p.name, true));
      values[p.name] = value;
    }
  } else {
    const form = body instanceof URLSearchParams ? [...body.entries()] : [];
    for (const [name, value] of [...request.query, ...form]) {
      if (GENERAL.has(name)) continue;
      if (!isName(name)) throw badRequest(`Unknown parameter "${name.slice(0, 100)}" of $evaluate-measure`, name);
      if (values[name] !== undefined) throw badRequest(`Parameter ${name} is repeated`, name);
      values[name] = value;
    }
  }
  const at = (name: Name) => where(name, fromBody);
  const required = (name: 'periodStart' | 'periodEnd'): string => {
    const value = values[name];
    if (value === undefined) throw badRequest(`${name} is required`, at(name));
    const d = day(value);
    if (!d) throw badRequest(`${name} must be a date (YYYY-MM-DD), got "${value.slice(0, 40)}"`, at(name));
    return d;
  };
  const start = required('periodStart');
  const end = required('periodEnd');
  if (end < start) throw badRequest(`periodEnd (${end}) is before periodStart (${start})`, at('periodEnd'));
  let subject: string | undefined;
  if (values.subject !== undefined) {
    subject = reference(values.subject, ['Patient', 'Group']);
    if (!subject) throw badRequest('subject must reference a Patient or a Group', at('subject'));
  }
  let practitioner: string | undefined;
  if (values.practitioner !== undefined) {
    practitioner = reference(values.practitioner, ['Practitioner']);
    if (!practitioner) throw badRequest('practitioner must reference a Practitioner', at('practitioner'));
  }
  const reportType = (values.reportType ?? (subject?.startsWith('Patient/') ? 'subject' : 'population')) as ReportType;
  if (!REPORT_TYPES.includes(reportType)) {
    throw badRequest(`reportType must be one of ${REPORT_TYPES.join(', ')}`, at('reportType'));
  }
  if (reportType === 'subject' && !subject?.startsWith('Patient/')) {
    throw badRequest('reportType subject needs a Patient as subject', at('subject'));
  }
  if (values.measure !== undefined && !typeLevel) {
    throw badRequest('measure applies to Measure/$evaluate-measure, not to a Measure instance', at('measure'));
  }
  if (typeLevel && values.measure === undefined) {
    throw badRequest('Measure/$evaluate-measure needs measure (the canonical url of a Measure)', at('measure'));
  }
  return { period: { start, end }, reportType, subject, practitioner, measure: values.measure };
}
