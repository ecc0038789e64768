import type { CodeSystem, OperationOutcomeIssue, StructureDefinition, ValueSet } from '@medplum/fhirtypes';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { issue } from '../fhir/outcome';
import { loadBaseDefinitions, type LoadedBase } from './base-definitions';
import { asList, isObject, type JsonObject } from './json';
import { compileProfile, CORE_PREFIX, ProfileError, type CompiledProfile } from './profile-model';
import { ProfileValidator } from './profile-validator';
import { StructureValidator } from './structure';

export { ProfileError } from './profile-model';
export { unevaluableConstraints } from './invariants';

export interface ValidateOptions {
  /** Canonical URLs of profiles to validate against besides the resource's meta.profile ($validate ?profile=). */
  profiles?: string[];
}

export interface CreateValidatorOptions {
  /** Folder of StructureDefinition / ValueSet / CodeSystem JSON files; default `<repo>/profiles`. */
  profilesDir?: string;
  /** Profiles every resource of a type must conform to, e.g. { MedicationDispense: ['.../meds-dispense'] }. */
  requiredProfiles?: Record<string, string[]>;
}

type ConformanceResource = StructureDefinition | ValueSet | CodeSystem;

/**
 * Validates resources against the R4 base specification and our profiles. Pure and database-free:
 * everything is compiled at construction, and conformance resources created at runtime are added
 * with addConformanceResource.
 *
 * Issues follow one convention: severity, code (IssueType), details.text, expression (a FHIRPath
 * path with array indexes, e.g. `MedicationRequest.dosageInstruction[0].timing`); a failed invariant
 * also has the constraint key alone in `diagnostics` (see issues.ts).
 */
export class Validator {
  /** The conformance resources of profiles/, which the server also stores and serves. */
  shipped: ConformanceResource[] = [];
  private readonly structure: StructureValidator;
  private readonly profileValidator: ProfileValidator;
  private readonly profiles = new Map<string, CompiledProfile>();
  /** The specification's other profiles (vital signs...); one of ours or the API's of the same url takes precedence. */
  private readonly coreProfiles = new Map<string, CompiledProfile>();
  /** Core profiles our differential-only compiler cannot use, with why: a resource declaring one is refused. */
  readonly unusableCoreProfiles = new Map<string, string>();

  constructor(
    private readonly base: LoadedBase,
    private readonly requiredProfiles: Record<string, string[]> = {},
  ) {
    this.structure = new StructureValidator(base);
    const typeNames = new Set([...base.models.keys(), ...base.primitives.keys()]);
    this.profileValidator = new ProfileValidator({
      terminology: base.terminology,
      resourceTypes: base.resourceTypes,
      typeNames,
      profile: (url) => this.profile(url),
    });
    for (const sd of base.coreProfiles) {
      try {
        const compiled = compileProfile(sd);
        this.coreProfiles.set(compiled.url, compiled);
      } catch (e) {
        if (!(e instanceof ProfileError) || !sd.url) throw e;
        this.unusableCoreProfiles.set(sd.url, e.message);
      }
    }
  }

  private profile(url: string): CompiledProfile | undefined {
    const bare = stripVersion(url);
    return this.profiles.get(bare) ?? this.coreProfiles.get(bare);
  }

  validate(resource: unknown, options: ValidateOptions = {}): OperationOutcomeIssue[] {
    const issues: OperationOutcomeIssue[] = [];
    this.structure.validateResource(resource, undefined, issues);
    if (!isObject(resource) || typeof resource.resourceType !== 'string') return issues;
    const type = resource.resourceType;
    const extra = [...(options.profiles ?? []), ...(this.requiredProfiles[type] ?? [])];
    this.validateProfiles(resource, type, extra, issues, resource);
    return issues;
  }

  /**
   * Validates a Bundle or Parameters that a request carries as its input (a batch, an operation's
   * parameters, a FHIRPath Patch) against the base definitions, as any resource is, except that the
   * resources inside it are only checked to be resources: they are validated on their own when they
   * are used (each entry's write), and not at all by $validate, whose subject they are.
   */
  validateEnvelope(resource: unknown): OperationOutcomeIssue[] {
    const issues: OperationOutcomeIssue[] = [];
    this.structure.validateResource(resource, undefined, issues, undefined, true);
    return issues;
  }

  /** Adds or replaces a profile, extension definition, value set or code system. Throws ProfileError for unusable profiles. */
  addConformanceResource(resource: ConformanceResource): void {
    switch (resource.resourceType) {
      case 'StructureDefinition': {
        const compiled = compileProfile(resource);
        this.profiles.set(compiled.url, compiled);
        break;
      }
      case 'ValueSet':
        this.base.terminology.addValueSet(resource);
        break;
      case 'CodeSystem':
        this.base.terminology.addCodeSystem(resource);
        break;
    }
  }

  /**
   * Forgets the profile, value set or code system at `url` (its runtime resource was deleted or moved
   * to another url). The caller re-adds whatever should answer for that url now (a shipped one).
   */
  removeConformanceResource(type: ConformanceResource['resourceType'], url: string): void {
    if (type === 'StructureDefinition') this.profiles.delete(stripVersion(url));
    else if (type === 'ValueSet') this.base.terminology.removeValueSet(url);
    else this.base.terminology.removeCodeSystem(url);
  }

  /** Whether url names one of our profiles, a core profile or a core R4 definition. */
  hasProfile(url: string): boolean {
    return this.profile(url) !== undefined || this.base.structureDefinitions.has(stripVersion(url));
  }

  /**
   * Canonical URLs of our profiles (profiles/ and the API's) on a resource type
   * (CapabilityStatement.rest.resource.supportedProfile); the specification's own are not listed.
   */
  profilesFor(type: string): string[] {
    return [...this.profiles.values()].filter((p) => p.type === type).map((p) => p.url);
  }

  /**
   * Problems that would make addConformanceResource throw, as issues: call it while validating a
   * StructureDefinition write, so an unusable profile is rejected (422) before it is stored.
   */
  conformanceProblems(resource: unknown): OperationOutcomeIssue[] {
    if (!isObject(resource) || resource.resourceType !== 'StructureDefinition') return [];
    try {
      compileProfile(resource as unknown as StructureDefinition);
      return [];
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      return [issue('error', 'processing', text, 'StructureDefinition')];
    }
  }

  /** The profiles loaded (from profiles/ and at runtime), e.g. to serve them as StructureDefinition resources. */
  profileDefinitions(): StructureDefinition[] {
    return [...this.profiles.values()].map((p) => p.definition);
  }

  /** meta.profile and the extra profiles, then the same for contained resources and Bundle entries. */
  private validateProfiles(
    resource: JsonObject,
    path: string,
    extra: readonly string[],
    issues: OperationOutcomeIssue[],
    root: JsonObject,
  ): void {
    const type = String(resource.resourceType);
    const meta = isObject(resource.meta) ? resource.meta : undefined;
    const declared = asList(meta?.profile).map((url, i) => ({ url, at: `${path}.meta.profile[${i}]` }));
    const wanted = [...declared, ...extra.map((url) => ({ url, at: path }))];
    const env = { resource, rootResource: root };
    for (const { url, at } of wanted) {
      if (typeof url !== 'string') continue; // the structure validator reported it
      const bare = stripVersion(url);
      const profile = this.profile(bare);
      if (!profile) {
        const core = this.base.structureDefinitions.get(bare);
        if (!core) issues.push(issue('error', 'processing', `Profile ${url} is not known to this server`, at));
        else if (core.type !== type)
          issues.push(issue('error', 'processing', `Profile ${url} is for ${core.type}, not ${type}`, at));
        continue;
      }
      if (profile.type !== type) {
        issues.push(issue('error', 'processing', `Profile ${url} is for ${profile.type}, not ${type}`, at));
        continue;
      }
      this.profileValidator.validate(resource, profile, path, issues, env);
    }
    asList(resource.contained).forEach((c, i) => {
      if (isObject(c) && typeof c.resourceType === 'string')
        this.validateProfiles(c, `${path}.contained[${i}]`, [], issues, root);
    });
    if (type === 'Bundle') {
      asList(resource.entry).forEach((e, i) => {
        const r = isObject(e) ? e.resource : undefined;
        if (isObject(r) && typeof r.resourceType === 'string') {
          const extraForType = this.requiredProfiles[r.resourceType] ?? [];
          this.validateProfiles(r, `${path}.entry[${i}].resource`, extraForType, issues, root);
        }
      });
    }
  }
}

function stripVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar < 0 ? url : url.slice(0, bar);
}

/** The repository's profiles/ folder (this file lives in src/validation or dist/src/validation). */
function defaultProfilesDir(): string {
  const candidates = [join(__dirname, '..', '..', 'profiles'), join(__dirname, '..', '..', '..', 'profiles')];
  for (const dir of candidates) {
    try {
      readdirSync(dir);
      return dir;
    } catch {
      // try the next layout
    }
  }
  return candidates[0];
}

/**
 * Loads the R4 definitions and every JSON conformance resource of profilesDir (value sets and code
 * systems first, so profiles can bind to them). Throws when a file is not valid JSON or a profile
 * cannot be compiled: a broken profiles/ folder should stop start-up, not silently validate less.
 */
export function createValidator(options: CreateValidatorOptions = {}): Validator {
  const validator = new Validator(loadBaseDefinitions(), options.requiredProfiles);
  const dir = options.profilesDir ?? defaultProfilesDir();
  const resources: ConformanceResource[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const parsed = JSON.parse(readFileSync(join(dir, file), 'utf8')) as ConformanceResource;
    resources.push(parsed);
  }
  const order = { CodeSystem: 0, ValueSet: 1, StructureDefinition: 2 } as const;
  resources.sort((a, b) => order[a.resourceType] - order[b.resourceType]);
  for (const r of resources) {
    try {
      validator.addConformanceResource(r);
    } catch (e) {
      if (e instanceof ProfileError) throw new ProfileError(`${dir}: ${e.message}`);
      throw e;
    }
  }
  validator.shipped = resources;
  return validator;
}

export { CORE_PREFIX };
