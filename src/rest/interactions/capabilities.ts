import type {
  CapabilityStatement,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceOperation,
} from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resourceTypes } from '../../fhir/definitions';
import type { FhirRequest, FhirResponse } from '../../fhir/request';
import type { ServerContext } from '../context';
import { routes } from '../router';
import { restSecurity } from '../../auth/smart-configuration';

/** The definitions of the types that are not R4's (LOGICAL_RESOURCE_TYPES). */
const LOGICAL_PROFILES: Partial<Record<string, string>> = {
  ViewDefinition: 'https://sql-on-fhir.org/ig/StructureDefinition/ViewDefinition',
};

type TypeInteraction = NonNullable<CapabilityStatementRestResource['interaction']>[number]['code'];

/** Route interactions as the CapabilityStatement names them. */
const TYPE_INTERACTIONS: Partial<Record<string, TypeInteraction>> = {
  read: 'read',
  vread: 'vread',
  update: 'update',
  patch: 'patch',
  delete: 'delete',
  'history-instance': 'history-instance',
  'history-type': 'history-type',
  create: 'create',
  'search-type': 'search-type',
};

const packageVersion = (
  JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }
).version;

/**
 * The CapabilityStatement, generated from the route table, the registered operations and what the
 * search and validation modules report, so it says what the server really does and nothing more.
 */
export async function capabilityStatement(request: FhirRequest, context: ServerContext): Promise<FhirResponse> {
  const routed = new Set(routes.map((r) => r.interaction));
  const interactions = Object.entries(TYPE_INTERACTIONS)
    .filter(([kind]) => routed.has(kind as never) || (kind === 'search-type' && context.search))
    .map(([, code]) => ({ code: code as TypeInteraction }));

  // Conditional interactions match with search.
  const conditional = context.findMatches !== undefined;
  const resource: CapabilityStatementRestResource[] = resourceTypes().map((type) => {
    const operations: CapabilityStatementRestResourceOperation[] = context.operations
      .filter(
        (op) =>
          !op.unlisted &&
          op.levels.some((l) => l !== 'system') &&
          (!op.resourceTypes || op.resourceTypes.includes(type)),
      )
      .map((op) => ({ name: op.name, definition: op.definitionFor?.(type) ?? op.definition }));
    const searchParam = context.capabilities.flatMap((c) => c.searchParams?.(type) ?? []);
    const supportedProfile = context.capabilities.flatMap((c) => c.supportedProfiles?.(type) ?? []);
    const refused = (code: string) => context.capabilities.some((c) => c.refusesInteraction?.(type, code));
    const extension = context.capabilities.flatMap((c) => c.resourceExtensions?.(type) ?? []);
    return {
      ...(extension.length ? { extension } : {}),
      type: type as CapabilityStatementRestResource['type'],
      profile: LOGICAL_PROFILES[type] ?? `http://hl7.org/fhir/StructureDefinition/${type}`,
      ...(supportedProfile.length ? { supportedProfile } : {}),
      interaction: interactions.filter(({ code }) => !refused(code)),
      versioning: 'versioned-update',
      readHistory: true,
      updateCreate: !refused('update'),
      conditionalCreate: conditional,
      conditionalRead: 'full-support',
      conditionalUpdate: conditional && !refused('update'),
      conditionalDelete:
        !conditional || refused('delete')
          ? 'not-supported'
          : context.config.conditionalDeleteMax > 1
            ? 'multiple'
            : 'single',
      ...(searchParam.length ? { searchParam } : {}),
      ...(operations.length ? { operation: operations } : {}),
    };
  });

  const systemInteractions = [
    ...(routed.has('history-system') ? [{ code: 'history-system' as const }] : []),
    ...(routed.has('transaction') ? [{ code: 'transaction' as const }] : []),
    // One route serves both Bundle types.
    ...(routed.has('transaction') ? [{ code: 'batch' as const }] : []),
    ...(context.search ? [{ code: 'search-system' as const }] : []),
  ];

  const statement: CapabilityStatement = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: 'meds-fhir',
    kind: 'instance',
    software: { name: 'meds-fhir', version: packageVersion },
    implementation: { description: 'meds-fhir medication management FHIR server', url: request.baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: routed.has('patch') ? ['application/json-patch+json', 'application/fhir+json'] : undefined,
    rest: [
      {
        mode: 'server',
        security: restSecurity(context.config, request.baseUrl),
        resource,
        interaction: systemInteractions,
        operation: context.operations
          .filter((op) => !op.unlisted && op.levels.includes('system'))
          .map((op) => ({ name: op.name, definition: op.definitionFor?.(undefined) ?? op.definition })),
      },
    ],
  };
  return { status: 200, headers: {}, body: statement };
}
