import { loadConfig, type ServerConfig } from '../config';
import { FhirError, issue, outcome } from '../fhir/outcome';

/** What one patch may do: how many operations, how long its FHIRPath, how large a result. */
export interface PatchLimits {
  maxOperations: number;
  maxFhirPathLength: number;
  /** JSON values the patched resource may reach, copies included (MAX_RESOURCE_ELEMENTS). */
  maxElements: number;
}

export function patchLimits(config: ServerConfig): PatchLimits {
  return {
    maxOperations: config.maxPatchOperations,
    maxFhirPathLength: config.maxFhirPathLength,
    maxElements: config.maxResourceElements,
  };
}

/** The defaults of the settings, for callers without a server's configuration (tools, unit tests). */
export const DEFAULT_PATCH_LIMITS: PatchLimits = patchLimits(loadConfig({}));

/** Refuses a patch of more operations than MAX_PATCH_OPERATIONS allows: 413, at `expression`. */
export function checkOperationCount(
  format: 'JSON Patch' | 'FHIRPath Patch',
  count: number,
  limits: PatchLimits,
  expression: string,
): void {
  if (count <= limits.maxOperations) return;
  throw new FhirError(
    413,
    outcome([
      issue(
        'error',
        'too-costly',
        `The ${format} has ${count} operations; at most ${limits.maxOperations} are accepted (MAX_PATCH_OPERATIONS)`,
        expression,
      ),
    ]),
  );
}
