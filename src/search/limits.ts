import type { ServerConfig } from '../config';
import { FhirError, issue, outcome } from '../fhir/outcome';
import { splitEscaped } from './parse';

/** What one search (or the query of a conditional interaction) may ask for; see ServerConfig. */
export interface SearchLimits {
  maxParameters: number;
  maxValueLength: number;
  maxValues: number;
  maxChains: number;
  maxIncludes: number;
}

export function searchLimits(config: ServerConfig): SearchLimits {
  return {
    maxParameters: config.maxSearchParameters,
    maxValueLength: config.maxSearchValueLength,
    maxValues: config.maxSearchValues,
    maxChains: config.maxSearchChains,
    maxIncludes: config.maxSearchIncludes,
  };
}

function tooCostly(text: string, expression: string): FhirError {
  return new FhirError(400, outcome([issue('error', 'too-costly', text, expression)]));
}

/** A parameter name as quoted in a message: names are request data and may be kilobytes long. */
function quoted(name: string): string {
  return name.length > 100 ? `${name.slice(0, 100)}...` : name;
}

/** Chain and reverse-chain links of one parameter name: each runs an inner query. */
function chainLinks(name: string): number {
  let links = name.split('_has:').length - 1;
  // Dots chain (subject:Patient.name); in a _has name they chain inside the last part.
  for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) links++;
  return links;
}

/**
 * Checks a query against the limits before anything is parsed or compiled, so that a request asking
 * for too much is answered at once (400, too-costly, naming the parameter) instead of after it has
 * run thousands of inner queries or compiled a megabyte regular expression.
 */
export function checkSearchLimits(pairs: readonly [string, string][], limits: SearchLimits): void {
  if (pairs.length > limits.maxParameters) {
    const first = quoted(pairs[limits.maxParameters][0]);
    throw tooCostly(
      `The search has ${pairs.length} parameters; at most ${limits.maxParameters} are accepted (MAX_SEARCH_PARAMETERS)`,
      first,
    );
  }
  let chains = 0;
  let includes = 0;
  for (const [name, value] of pairs) {
    const at = quoted(name);
    if (name.length > limits.maxValueLength || value.length > limits.maxValueLength) {
      throw tooCostly(`${at} is longer than ${limits.maxValueLength} characters (MAX_SEARCH_VALUE_LENGTH)`, at);
    }
    if (splitEscaped(value, ',').length > limits.maxValues) {
      throw tooCostly(`${at} has more than ${limits.maxValues} comma-separated values (MAX_SEARCH_VALUES)`, at);
    }
    chains += chainLinks(name);
    if (chains > limits.maxChains) {
      throw tooCostly(`The search has more than ${limits.maxChains} chained or _has links (MAX_SEARCH_CHAINS)`, at);
    }
    if (name.startsWith('_include') || name.startsWith('_revinclude')) includes++;
    if (includes > limits.maxIncludes) {
      throw tooCostly(
        `The search has more than ${limits.maxIncludes} _include and _revinclude parameters (MAX_SEARCH_INCLUDES)`,
        at,
      );
    }
  }
}
