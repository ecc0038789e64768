import { badRequest } from '../fhir/outcome';

export function etag(versionId: number | string): string {
  return `W/"${versionId}"`;
}

/** Reads a version from an ETag-style header value: W/"3", "3" or 3. Undefined when malformed. */
export function versionFromEtag(value: string): number | undefined {
  const match = /^\s*(?:W\/)?"?(\d+)"?\s*$/.exec(value);
  return match ? Number(match[1]) : undefined;
}

export function parseIfMatch(value: string): number {
  const version = versionFromEtag(value);
  if (version === undefined) throw badRequest(`If-Match must be a version ETag such as W/"1", got ${value}`);
  return version;
}

/** RFC 7231 HTTP-date, the format of Last-Modified. */
export function httpDate(date: Date): string {
  return date.toUTCString();
}

export type ReturnPreference = 'minimal' | 'representation' | 'OperationOutcome';
export type HandlingPreference = 'strict' | 'lenient';

export interface Preferences {
  return?: ReturnPreference;
  handling?: HandlingPreference;
  respondAsync?: boolean;
}

/** Parses the Prefer header (RFC 7240) for the preferences FHIR defines. */
export function parsePrefer(header: string | undefined): Preferences {
  const preferences: Preferences = {};
  if (!header) return preferences;
  for (const part of header.split(',')) {
    const [name, rawValue] = part.split('=').map((s) => s.trim());
    const value = rawValue?.replace(/^"|"$/g, '');
    if (name === 'return' && (value === 'minimal' || value === 'representation' || value === 'OperationOutcome')) {
      preferences.return = value;
    } else if (name === 'handling' && (value === 'strict' || value === 'lenient')) {
      preferences.handling = value;
    } else if (name === 'respond-async') {
      preferences.respondAsync = true;
    }
  }
  return preferences;
}
