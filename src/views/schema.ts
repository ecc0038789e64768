import Ajv, { type ErrorObject } from 'ajv';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue } from '../fhir/outcome';

/**
 * The shape of a SQL-on-FHIR v2 ViewDefinition (https://sql-on-fhir.org/ig/2.0.0/StructureDefinition-ViewDefinition.html),
 * checked with ajv before anything is compiled. The view's own parts (select, column, where, constant)
 * are closed, so that a misspelt key is an error rather than a silently ignored column; the resource's
 * metadata (url, name, meta, extension, ...) is left open like any canonical resource's.
 */
const NAME = '^[A-Za-z][A-Za-z0-9_]*$';

const schema = {
  $id: 'ViewDefinition',
  type: 'object',
  required: ['resource', 'select'],
  properties: {
    resourceType: { const: 'ViewDefinition' },
    url: { type: 'string' },
    name: { type: 'string', pattern: NAME },
    status: { enum: ['draft', 'active', 'retired', 'unknown'] },
    resource: { type: 'string', pattern: '^[A-Z][A-Za-z]*$' },
    fhirVersion: { type: 'array', items: { type: 'string' } },
    constant: { type: 'array', items: { $ref: '#/$defs/constant' } },
    select: { type: 'array', minItems: 1, items: { $ref: '#/$defs/select' } },
    where: { type: 'array', items: { $ref: '#/$defs/where' } },
  },
  $defs: {
    constant: {
      type: 'object',
      required: ['name'],
      properties: { name: { type: 'string', pattern: NAME } },
      patternProperties: { '^value[A-Z][A-Za-z0-9]*$': { type: ['string', 'number', 'boolean'] } },
      additionalProperties: false,
    },
    where: {
      type: 'object',
      required: ['path'],
      properties: { path: { type: 'string', minLength: 1 }, description: { type: 'string' } },
      additionalProperties: false,
    },
    column: {
      type: 'object',
      required: ['name', 'path'],
      properties: {
        name: { type: 'string', pattern: NAME },
        path: { type: 'string', minLength: 1 },
        description: { type: 'string' },
        collection: { type: 'boolean' },
        type: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9]*$' },
        tag: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name', 'value'],
            properties: { name: { type: 'string' }, value: { type: 'string' } },
            additionalProperties: false,
          },
        },
      },
      additionalProperties: false,
    },
    select: {
      type: 'object',
      properties: {
        column: { type: 'array', minItems: 1, items: { $ref: '#/$defs/column' } },
        select: { type: 'array', minItems: 1, items: { $ref: '#/$defs/select' } },
        forEach: { type: 'string', minLength: 1 },
        forEachOrNull: { type: 'string', minLength: 1 },
        repeat: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        unionAll: { type: 'array', minItems: 1, items: { $ref: '#/$defs/select' } },
      },
      additionalProperties: false,
      not: {
        anyOf: [
          { required: ['forEach', 'forEachOrNull'] },
          { required: ['forEach', 'repeat'] },
          { required: ['forEachOrNull', 'repeat'] },
        ],
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

/** `/select/0/column/1` → `ViewDefinition.select[0].column[1]`. */
export function elementPath(pointer: string): string {
  let path = 'ViewDefinition';
  for (const part of pointer.split('/').slice(1)) path += /^\d+$/.test(part) ? `[${part}]` : `.${part}`;
  return path;
}

function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return `${(error.params as { missingProperty: string }).missingProperty} is required`;
    case 'additionalProperties':
      return `${(error.params as { additionalProperty: string }).additionalProperty} is not an element of a ViewDefinition here`;
    case 'not':
      return 'a select may have only one of forEach, forEachOrNull and repeat';
    case 'pattern':
      return `must match ${(error.params as { pattern: string }).pattern}`;
    default:
      return error.message ?? error.keyword;
  }
}

/** What is wrong with the shape of a ViewDefinition: one issue per problem, each naming its element. */
export function shapeProblems(view: unknown): OperationOutcomeIssue[] {
  if (validate(view)) return [];
  return (validate.errors ?? []).map((e) => {
    const missing = e.keyword === 'required' ? `.${(e.params as { missingProperty: string }).missingProperty}` : '';
    const extra =
      e.keyword === 'additionalProperties' ? `.${(e.params as { additionalProperty: string }).additionalProperty}` : '';
    return issue(
      'error',
      e.keyword === 'required' ? 'required' : 'structure',
      describe(e),
      `${elementPath(e.instancePath)}${missing}${extra}`,
    );
  });
}
