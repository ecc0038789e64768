import { loadConfig, type ServerConfig } from '../config';

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
