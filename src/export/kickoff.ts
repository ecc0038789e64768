import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { ID_PATTERN, isResourceType } from '../fhir/definitions';
import { badRequest } from '../fhir/outcome';
import type { FhirRequest } from '../fhir/request';

/** The kick-off parameters of Bulk Data Access 2.0 ("Query Parameters" of the export operation). */
export interface ExportParameters {
  types?: string[];
  since?: Date;
  typeFilters: { type: string; query: string }[];
  elements?: string[];
  patients?: string[];
  /** Accepted and ignored (the manifest's error file says so). */
  warnings: string[];
}

/** `_outputFormat` values meaning NDJSON (the spec's abbreviation included). */
const NDJSON_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);

/** includeAssociatedData values of the spec's value set; others are the client's own only with a leading _. */
const ASSOCIATED_DATA = new Set(['LatestProvenanceResources', 'RelevantProvenanceResources']);

/** Parameters every FHIR request may carry, which say nothing about what is exported. */
const GENERAL = new Set(['_format', '_pretty']);

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const ELEMENT = /^[a-z][A-Za-z0-9]{0,63}$/;
const PATIENT_REFERENCE = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/;

type Raw = { name: string; value: string; index?: number };

/** FHIRPath of a parameter: the query name for GET, the Parameters entry for POST. */
function where(raw: Raw): string {
  return raw.index === undefined ? raw.name : `Parameters.parameter[${raw.index}]`;
}

/** A query string keeps `+` only when the client encoded it: an instant's or a media type's `+` read as a space is put back. */
const plus = (value: string) => value.replace(/ /g, '+');

function fromParameters(body: Parameters): Raw[] {
  return (body.parameter ?? []).map((p: ParametersParameter, index) => {
    const value =
      p.valueString ?? p.valueCode ?? p.valueInstant ?? p.valueDateTime ?? p.valueUri ?? p.valueReference?.reference;
    if (typeof value !== 'string') {
      throw badRequest(`Parameter ${p.name} needs a value`, `Parameters.parameter[${index}]`);
    }
    return { name: p.name as string, value, index };
  });
}

function list(raw: Raw): string[] {
  return raw.value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

/**
 * Reads a kick-off request: GET query parameters or a POST Parameters body (repeated parameters
 * add up; a comma-separated value counts as repeats). What the spec lets a server ignore is ignored
 * with a warning; what it asks and this server cannot do is 400, naming the parameter.
 */
export function readExportParameters(request: FhirRequest, lenient: boolean): ExportParameters {
  const post = request.method === 'POST' && request.body !== undefined;
  const raws: Raw[] = post
    ? fromParameters(request.body as Parameters)
    : request.query.map(([name, value]) => ({ name, value }));
  const result: ExportParameters = { typeFilters: [], warnings: [] };
  for (const raw of raws) {
    switch (raw.name) {
      case '_outputFormat':
        if (!NDJSON_FORMATS.has(plus(raw.value))) {
          throw badRequest(
            `_outputFormat ${raw.value} is not supported: the server writes application/fhir+ndjson`,
            where(raw),
          );
        }
        break;
      case '_type':
        for (const type of list(raw)) {
          if (!isResourceType(type)) throw badRequest(`_type ${type} is not a resource type`, where(raw));
          if (!(result.types ??= []).includes(type)) result.types.push(type);
        }
        break;
      case '_since': {
        const value = plus(raw.value);
        if (!INSTANT.test(value) || Number.isNaN(Date.parse(value))) {
          throw badRequest(`_since must be a FHIR instant (with a time zone), got ${raw.value}`, where(raw));
        }
        if (result.since) throw badRequest('_since may be given once', where(raw));
        result.since = new Date(value);
        break;
      }
      case '_typeFilter':
        for (const filter of raw.value.split(/,(?=[A-Z][A-Za-z]+\?)/)) {
          const mark = filter.indexOf('?');
          const type = mark > 0 ? filter.slice(0, mark) : '';
          if (!isResourceType(type)) {
            throw badRequest(
              `_typeFilter must be a resource type and a search query (Type?query), got ${filter}`,
              where(raw),
            );
          }
          result.typeFilters.push({ type, query: filter.slice(mark + 1) });
        }
        break;
      case '_elements':
        for (const element of list(raw)) {
          const [first, second] = element.split('.');
          const ok = second === undefined ? ELEMENT.test(first) : isResourceType(first) && ELEMENT.test(second);
          if (!ok || element.split('.').length > 2) {
            throw badRequest(`_elements takes element names or Type.element, got ${element}`, where(raw));
          }
          (result.elements ??= []).push(element);
        }
        break;
      case 'patient': {
        if (!post) throw badRequest('patient is a parameter of POST kick-off requests only', where(raw));
        const match = PATIENT_REFERENCE.exec(raw.value);
        if (!match || !ID_PATTERN.test(match[1])) {
          throw badRequest(`patient must reference a Patient, got ${raw.value}`, `${where(raw)}.valueReference`);
        }
        if (!(result.patients ??= []).includes(match[1])) result.patients.push(match[1]);
        break;
      }
      case 'includeAssociatedData':
        for (const value of list(raw)) {
          if (!ASSOCIATED_DATA.has(value) && !value.startsWith('_')) {
            throw badRequest(`includeAssociatedData ${value} is not a known value`, where(raw));
          }
          result.warnings.push(`includeAssociatedData ${value} is not supported and was ignored`);
        }
        break;
      default:
        if (GENERAL.has(raw.name)) break;
        if (!lenient) throw badRequest(`${raw.name} is not a parameter of $export`, where(raw));
        result.warnings.push(`${raw.name} is not a parameter of $export and was ignored`);
    }
  }
  return result;
}
