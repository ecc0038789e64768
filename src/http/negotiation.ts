import { parseJsonText } from '../fhir/json-text';
import { FhirError, issue, notAcceptable, outcome, unsupportedMediaType } from '../fhir/outcome';

const JSON_FORMATS = new Set(['json', 'application/json', 'application/fhir+json', 'text/json']);
const XML_FORMATS = new Set(['xml', 'application/xml', 'application/fhir+xml', 'text/xml', 'html', 'text/html']);

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
    (r) => r === '*/*' || r === 'application/*' || r.endsWith('+json') || JSON_FORMATS.has(r),
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
 * Parses a JSON body; bad syntax is a structure error (400), never a 500. Numbers that JavaScript
 * would write otherwise (`1.50`, `14.0`) keep their text (src/fhir/json-text.ts).
 */
export function parseJsonBody(raw: Buffer): unknown {
  try {
    return parseJsonText(raw.toString('utf8'));
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new FhirError(400, outcome([issue('error', 'structure', `The body is not valid JSON: ${detail}`)]));
  }
}
