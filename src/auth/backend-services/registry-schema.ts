import Ajv from 'ajv';

/** Sensitivity codes a clearance may list (SECURITY.md, "Sensitivity labels"), or `*` for all. */
export const CLEARANCE_CODES = ['42CFRPart2', 'SUD', 'ETH', 'ETHUD', 'OPIOIDUD', 'PSY', 'PSYTHPN', 'HIV', 'R', 'V'];

/**
 * The shape of AUTH_CLIENTS_FILE. Rules that need more than a shape (one key source per client,
 * usable keys, known scopes, unique ids) are checked in client-registry.ts. Written to the subset of
 * JSON Schema draft-07 that ajv 6 and ajv 8 (strict mode) read alike, with no `format`.
 */
const registrySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['clients'],
  properties: {
    clients: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['client_id', 'scope'],
        properties: {
          client_id: { type: 'string', pattern: '^[\\x21-\\x7E]{1,255}$' },
          description: { type: 'string' },
          jwks: {
            type: 'object',
            required: ['keys'],
            properties: {
              keys: {
                type: 'array',
                minItems: 1,
                items: {
                  type: 'object',
                  required: ['kty', 'kid'],
                  properties: {
                    kty: { enum: ['RSA', 'EC'] },
                    kid: { type: 'string', minLength: 1 },
                    alg: { type: 'string' },
                    use: { type: 'string' },
                  },
                },
              },
            },
          },
          jwks_uri: { type: 'string', pattern: '^https?://' },
          scope: { type: 'string', pattern: '\\S' },
          clearance: { type: 'array', uniqueItems: true, items: { enum: [...CLEARANCE_CODES, '*'] } },
          labels: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['system', 'code'],
              properties: {
                system: { type: 'string', pattern: '^\\S+$' },
                code: { type: 'string', pattern: '^\\S+$' },
                display: { type: 'string' },
              },
            },
          },
          organization: { type: 'string', pattern: '^Organization/[A-Za-z0-9\\-.]{1,64}$' },
          purpose_of_use: { type: 'string', pattern: '^[A-Z][A-Z0-9]*$' },
        },
      },
    },
  },
};

/** Only the members of an ajv error this module reads; ajv 6 calls the location dataPath, ajv 8 instancePath. */
interface SchemaError {
  keyword: string;
  message?: string;
  params: object;
  instancePath?: string;
  dataPath?: string;
}

/** `clients[2].jwks_uri`, from either ajv's JSON pointer (8) or its JavaScript path (6). */
function errorLocation(error: SchemaError): string {
  if (error.instancePath !== undefined) {
    return error.instancePath
      .split('/')
      .slice(1)
      .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((segment) => (/^\d+$/.test(segment) ? `[${segment}]` : `.${segment}`))
      .join('')
      .replace(/^\./, '');
  }
  return (error.dataPath ?? '').replace(/^\./, '');
}

function describe(error: SchemaError): string {
  const where = errorLocation(error) || 'the top level';
  const params = error.params as { additionalProperty?: string; allowedValues?: unknown[] };
  if (error.keyword === 'additionalProperties') return `${where}: "${params.additionalProperty}" is not a known member`;
  if (error.keyword === 'enum') return `${where}: must be one of ${JSON.stringify(params.allowedValues)}`;
  return `${where}: ${error.message ?? 'is not valid'}`;
}

const validate = new Ajv({ allErrors: true }).compile(registrySchema);

/** The problems with a parsed registry file's shape, one line each; empty when it has the right shape. */
export function registryShapeProblems(value: unknown): string[] {
  if (validate(value)) return [];
  return ((validate.errors ?? []) as SchemaError[]).slice(0, 20).map(describe);
}
