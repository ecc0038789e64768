import { type JsonLimits, parseBoundedJson } from '../fhir/json-limits';
import type { ServerConfig } from '../config';
import { FhirError, issue, notAcceptable, outcome, unsupportedMediaType } from '../fhir/outcome';

const JSON_FORMATS = new Set(['json', 'application/json', 'application/fhir+json', 'text/json']);
const XML_FORMATS = new Set(['xml', 'application/xml', 'application/fhir+xml', 'text/xml', 'html', 'text/html']);

/** What Bulk Data clients ask export files with (other answers are JSON all the same). */
const NDJSON = new Set(['application/fhir+ndjson', 'application/ndjson']);

/** Media types a request body may have, per interaction family. */
export const BODY_MEDIA_TYPES = new Set([
  'application/fhir+json',
  'application/json',
  'application/json-patch+json',
  'application/x-www-form-urlencoded',
]);

function mediaType(header: string): string {
  return header.split(';')[0].trim().toLowerCase();
}

/**
 * This server speaks JSON only. `_format` overrides Accept (RESTful API, "Content Types and encodings");
 * asking for XML, or for nothing JSON-like, is 406.
 */
export function checkResponseFormat(format: string | undefined, accept: string | undefined): void {
  if (format !== undefined) {
    const wanted = mediaType(format);
    if (JSON_FORMATS.has(wanted)) return;
    throw notAcceptable(
      XML_FORMATS.has(wanted)
        ? `_format=${format}: this server serves JSON only (application/fhir+json)`
        : `_format=${format} is not a format this server knows; use json`,
    );
  }
  if (!accept) return;
  const ranges = accept.split(',').map(mediaType);
  const acceptable = ranges.some(
    (r) => r === '*/*' || r === 'application/*' || r.endsWith('+json') || JSON_FORMATS.has(r) || NDJSON.has(r),
  );
  if (!acceptable) throw notAcceptable(`Accept: ${accept}: this server serves JSON only (application/fhir+json)`);
}

export function checkRequestContentType(contentType: string | undefined): string {
  // Clients that send JSON without a Content-Type are common enough (curl -d) to accept.
  if (!contentType) return 'application/fhir+json';
  const type = mediaType(contentType);
  if (!BODY_MEDIA_TYPES.has(type)) {
    throw unsupportedMediaType(`Content-Type ${type} is not supported; send application/fhir+json`);
  }
  return type;
}

/**
 * Parses a JSON body within the limits (depth, sizes, keys that reach prototypes) checked on its text
 * first, so nothing later walks more than the limits allow; bad syntax is a structure error (400).
 */
export function parseJsonBody(raw: Buffer, limits: JsonLimits): unknown {
  return parseBoundedJson(raw, limits, 'The body');
}

/**
 * Parses a form body (a search sent by POST) if it could hold a search within the search limits at
 * all, percent-encoded: a 9 MB value is refused before it is decoded, not after.
 */
export function parseFormBody(raw: Buffer, config: ServerConfig): URLSearchParams {
  // Each character may take 9 bytes percent-encoded (a 3-byte UTF-8 sequence); names get 100 bytes.
  const most = config.maxSearchParameters * (config.maxSearchValueLength * 9 + 100);
  if (raw.length > most) {
    throw new FhirError(
      413,
      outcome([
        issue(
          'error',
          'too-costly',
          `The form body has ${raw.length} bytes, more than a search within MAX_SEARCH_PARAMETERS and MAX_SEARCH_VALUE_LENGTH can`,
        ),
      ]),
    );
  }
  return new URLSearchParams(raw.toString('utf8'));
}
