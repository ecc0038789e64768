import { badRequest } from '../fhir/outcome';

export function etag(versionId: number | string): string {
  return `W/"${versionId}"`;
}

/** Reads a version from an ETag-style header value: W/"3", "3" or 3. Undefined when malformed. */
export function versionFromEtag(value: string): number | undefined {
  const match = /^\s*(?:W\/)?"?(\d+)"?\s*$/.exec(value);
  return match ? Number(match[1]) : undefined;
}

/** What an If-Match asks of the current version (RFC 9110 13.1.1, FHIR "Managing Resource Contention"). */
export interface VersionPrecondition {
  /** The header as sent, for messages. */
  readonly text: string;
  /** Whether a current version numbered `version` satisfies it. */
  accepts(version: number): boolean;
}

/** One entity-tag: optional W/, then any visible ASCII except `"` (or obs-text) between quotes. */
const ENTITY_TAG = /^(?:W\/)?"([\x21\x23-\x7e\x80-\xff]*)"$/;
/** Our own ETags in the forms clients send them: W/"3", "3", and bare 3 (lenient, as before). */
const OUR_VERSION = /^(?:W\/)?"?(\d+)"?$/;

/**
 * Parses If-Match: `*`, or a list of entity-tags. A well-formed tag that names no version of ours
 * (`W/"abc"`) is a version that is not the current one: 412, like a stale one. Only a header that is
 * no entity-tag at all is 400.
 */
export function parseIfMatch(value: string): VersionPrecondition {
  const text = value.trim();
  if (text === '*') return { text, accepts: () => true };
  const versions = new Set<number>();
  for (const raw of text.split(',')) {
    const tag = raw.trim();
    const ours = OUR_VERSION.exec(tag);
    if (ours) versions.add(Number(ours[1]));
    else if (!ENTITY_TAG.test(tag)) {
      throw badRequest(`If-Match must be an ETag such as W/"1", got ${value}`);
    }
  }
  return { text, accepts: (version) => versions.has(version) };
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
