import type { CapabilityStatementRestSecurity } from '@medplum/fhirtypes';
import type { ServerConfig } from '../config';

/** What the server's own token endpoint serves, when clients are registered (AUTH_CLIENTS_FILE). */
export function tokenEndpoint(config: ServerConfig, fhirBase: string): string | undefined {
  if (!config.auth.clientsFile) return undefined;
  return `${new URL(fhirBase).origin}/auth/token`;
}

const SCOPES_SUPPORTED = [
  'openid',
  'fhirUser',
  'launch/patient',
  'offline_access',
  'patient/*.cruds',
  'user/*.cruds',
  'system/*.cruds',
  'patient/*.read',
  'patient/*.write',
  'user/*.read',
  'user/*.write',
  'system/*.read',
  'system/*.write',
];

/**
 * `.well-known/smart-configuration` (SMART App Launch 2, "Conformance"): what this server verifies and
 * issues, and nothing it does not (no authorization endpoint: it launches no apps itself).
 */
export function smartConfiguration(config: ServerConfig, fhirBase: string): Record<string, unknown> {
  const token = tokenEndpoint(config, fhirBase);
  const capabilities = ['permission-v1', 'permission-v2', 'permission-patient', 'permission-user'];
  if (token) capabilities.push('client-confidential-asymmetric');
  return {
    ...(config.auth.mode === 'jwks' && config.auth.issuer ? { issuer: config.auth.issuer } : {}),
    ...(config.auth.mode === 'jwks' ? { jwks_uri: config.auth.jwksUri } : {}),
    ...(token
      ? {
          token_endpoint: token,
          grant_types_supported: ['client_credentials'],
          token_endpoint_auth_methods_supported: ['private_key_jwt'],
          token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
        }
      : {}),
    scopes_supported: SCOPES_SUPPORTED,
    capabilities,
  };
}

/** CapabilityStatement.rest.security: the same facts, as the CapabilityStatement carries them. */
export function restSecurity(config: ServerConfig, fhirBase: string): CapabilityStatementRestSecurity {
  const token = tokenEndpoint(config, fhirBase);
  const off = config.auth.mode === 'off';
  return {
    cors: config.corsOrigins.length > 0,
    ...(off
      ? {}
      : {
          service: [
            {
              coding: [
                { system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' },
              ],
              text: 'SMART on FHIR bearer tokens (SMART App Launch 2 scopes, v1 scopes mapped)',
            },
          ],
          ...(token
            ? {
                extension: [
                  {
                    url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
                    extension: [{ url: 'token', valueUri: token }],
                  },
                ],
              }
            : {}),
        }),
    description: off
      ? 'Authorization is off (AUTH=off): every request has full access.'
      : `Every request but metadata carries Authorization: Bearer <JWT>; scopes ${SCOPES_SUPPORTED.filter((s) => s.includes('/')).join(', ')} and query-restricted v2 scopes; see ${fhirBase}/.well-known/smart-configuration.`,
  };
}
