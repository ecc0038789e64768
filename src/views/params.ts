import type { Parameters, ParametersParameter, Reference, Resource } from '@medplum/fhirtypes';
import { badRequest, notAcceptable } from '../fhir/outcome';
import type { FhirRequest } from '../fhir/request';

export type ViewFormat = 'json' | 'ndjson' | 'csv';

/** The inputs of $viewdefinition-run (views/OperationDefinition-viewdefinition-run.json). */
export interface RunRequest {
  viewResource?: Resource;
  /** A reference (`ViewDefinition/id`) or a canonical url. */
  viewReference?: string;
  format: ViewFormat;
  header: boolean;
  patients: string[];
  groups: string[];
  since?: Date;
  limit?: number;
}

const FORMATS: Record<string, ViewFormat> = {
  json: 'json',
  'application/json': 'json',
  'application/fhir+json': 'json',
  ndjson: 'ndjson',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/fhir+ndjson': 'ndjson',
  csv: 'csv',
  'text/csv': 'csv',
};

export const FORMAT_NAMES = Object.keys(FORMATS);

const NAMES = new Set(['viewResource', 'viewReference', '_format', 'header', 'patient', 'group', '_since', '_limit']);
const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;
const ID_REFERENCE = /^(?:(Patient|Group)\/)?([A-Za-z0-9\-.]{1,64})$/;

function formatOf(value: string, at: string): ViewFormat {
  const format = FORMATS[value.split(';')[0].trim().toLowerCase()];
  if (!format) throw badRequest(`_format must be json, ndjson or csv, got "${value.slice(0, 100)}"`, at);
  return format;
}

/** The format Accept asks for when _format is absent: the first range this operation serves. */
function acceptedFormat(accept: string | undefined): ViewFormat {
  if (!accept) return 'json';
  for (const range of accept.split(',')) {
    const type = range.split(';')[0].trim().toLowerCase();
    if (FORMATS[type]) return FORMATS[type];
    if (type === '*/*' || type === 'application/*' || type === 'text/*') return type === 'text/*' ? 'csv' : 'json';
  }
  throw notAcceptable(`Accept: ${accept.slice(0, 100)}: $viewdefinition-run answers in json, ndjson or csv`);
}

function idOf(value: string, type: 'Patient' | 'Group', at: string): string {
  const match = ID_REFERENCE.exec(value.trim());
  if (!match || (match[1] && match[1] !== type))
    throw badRequest(`${value.slice(0, 100)} is not a ${type} id or reference`, at);
  return match[2];
}

function valueOf(p: ParametersParameter): string | boolean | number | undefined {
  const reference = (p.valueReference as Reference | undefined)?.reference;
  return (
    reference ??
    p.valueString ??
    p.valueCode ??
    p.valueId ??
    p.valueUri ??
    p.valueCanonical ??
    p.valueInstant ??
    p.valueDateTime ??
    p.valueBoolean ??
    p.valueInteger ??
    p.valuePositiveInt
  );
}

/**
 * Reads the inputs from the query (GET) or from a Parameters body (POST). Errors name the parameter
 * at fault: its bare name for a query parameter, its Parameters path for a body.
 */
export function readRunRequest(request: FhirRequest, body: Parameters | undefined): RunRequest {
  const entries: { name: string; value: string | boolean | number | undefined; resource?: Resource; at: string }[] = [];
  for (const [name, value] of request.query) {
    if (name === '_pretty') continue;
    entries.push({ name, value, at: name });
  }
  (body?.parameter ?? []).forEach((p, i) => {
    entries.push({ name: p.name, value: valueOf(p), resource: p.resource, at: `Parameters.parameter[${i}]` });
  });
  const run: RunRequest = { format: acceptedFormat(request.headers.accept), header: true, patients: [], groups: [] };
  const seen = new Set<string>();
  for (const { name, value, resource, at } of entries) {
    if (!NAMES.has(name)) throw badRequest(`Unknown parameter "${name.slice(0, 100)}" of $viewdefinition-run`, at);
    if (name !== 'patient' && name !== 'group') {
      if (seen.has(name)) throw badRequest(`Parameter ${name} is repeated`, at);
      seen.add(name);
    }
    if (name === 'viewResource') {
      if (!resource) throw badRequest('viewResource must carry a ViewDefinition as its resource', at);
      run.viewResource = resource;
      continue;
    }
    if (value === undefined) throw badRequest(`Parameter ${name} has no value`, at);
    const text = String(value);
    switch (name) {
      case 'viewReference':
        run.viewReference = text;
        break;
      case '_format':
        run.format = formatOf(text, at);
        break;
      case 'header':
        if (text !== 'true' && text !== 'false') throw badRequest('header must be true or false', at);
        run.header = text === 'true';
        break;
      case 'patient':
        run.patients.push(...text.split(',').map((v) => idOf(v, 'Patient', at)));
        break;
      case 'group':
        run.groups.push(...text.split(',').map((v) => idOf(v, 'Group', at)));
        break;
      case '_since': {
        const since = INSTANT.test(text) ? new Date(text) : undefined;
        if (!since || Number.isNaN(since.getTime()))
          throw badRequest(`_since must be an instant, got "${text.slice(0, 100)}"`, at);
        run.since = since;
        break;
      }
      case '_limit': {
        const limit = /^\d{1,9}$/.test(text) ? Number(text) : 0;
        if (limit < 1) throw badRequest(`_limit must be a positive integer, got "${text.slice(0, 100)}"`, at);
        run.limit = limit;
        break;
      }
    }
  }
  return run;
}
