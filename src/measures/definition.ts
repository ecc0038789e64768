import { type Model, compile } from 'fhirpath';
import * as r4Model from 'fhirpath/fhir-context/r4';
import type { CodeableConcept, Measure, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { issue } from '../fhir/outcome';

/**
 * A Measure as the evaluator runs it: each group's populations and stratifiers with their FHIRPath
 * criteria compiled once. Only proportion scoring with `text/fhirpath` criteria is supported; anything
 * else is reported as issues naming the element, so a Measure the evaluator cannot run is refused when
 * it is written (422) and never half-evaluated.
 */

export const POPULATION_SYSTEM = 'http://terminology.hl7.org/CodeSystem/measure-population';
export const POPULATION_CODES = ['initial-population', 'denominator', 'denominator-exclusion', 'numerator'] as const;
export type PopulationCode = (typeof POPULATION_CODES)[number];

type Evaluator = ReturnType<typeof compile>;

export interface CompiledStratifier {
  code?: CodeableConcept;
  /** Stable key for the report: the stratifier's code, else its position. */
  key: string;
  criteria: Evaluator;
}

export interface CompiledGroup {
  id?: string;
  code?: CodeableConcept;
  populations: Partial<Record<PopulationCode, Evaluator>>;
  stratifiers: CompiledStratifier[];
}

export interface CompiledMeasure {
  url?: string;
  version?: string;
  resource: Measure;
  groups: CompiledGroup[];
  /** The compartment types the criteria name with ofType(), besides the ones every evaluation loads. */
  types: string[];
}

export class MeasureDefinitionError extends Error {
  constructor(readonly issues: OperationOutcomeIssue[]) {
    super(issues.map((i) => i.details?.text).join('; '));
  }
}

const model = r4Model as unknown as Model;

/** What every evaluation loads: medication resources and what the shipped exclusions read. */
export const MEASURE_TYPES = ['MedicationRequest', 'MedicationDispense', 'Condition', 'Encounter', 'Procedure'];

function compileCriteria(
  criteria: { language?: string; expression?: string } | undefined,
  at: string,
  issues: OperationOutcomeIssue[],
): Evaluator | undefined {
  if (criteria?.language !== 'text/fhirpath') {
    issues.push(issue('error', 'not-supported', 'Criteria must be in text/fhirpath', `${at}.criteria.language`));
    return undefined;
  }
  if (!criteria.expression) {
    issues.push(issue('error', 'required', 'Criteria need an expression', `${at}.criteria.expression`));
    return undefined;
  }
  try {
    return compile(criteria.expression, model);
  } catch (e) {
    issues.push(
      issue('error', 'invalid', `FHIRPath does not parse: ${(e as Error).message}`, `${at}.criteria.expression`),
    );
    return undefined;
  }
}

function populationCode(code: CodeableConcept | undefined): PopulationCode | undefined {
  const c = code?.coding?.find((x) => x.system === POPULATION_SYSTEM)?.code;
  return (POPULATION_CODES as readonly string[]).includes(c ?? '') ? (c as PopulationCode) : undefined;
}

export function compileMeasure(measure: Measure): CompiledMeasure {
  const issues: OperationOutcomeIssue[] = [];
  const scoring = measure.scoring?.coding?.[0]?.code;
  if (scoring !== undefined && scoring !== 'proportion') {
    issues.push(
      issue('error', 'not-supported', `Scoring ${scoring} is not supported (proportion is)`, 'Measure.scoring'),
    );
  }
  if (!measure.group?.length) issues.push(issue('error', 'required', 'A Measure needs a group', 'Measure.group'));
  const groups = (measure.group ?? []).map((group, g): CompiledGroup => {
    const populations: CompiledGroup['populations'] = {};
    (group.population ?? []).forEach((p, i) => {
      const at = `Measure.group[${g}].population[${i}]`;
      const code = populationCode(p.code);
      if (!code) {
        issues.push(
          issue(
            'error',
            'not-supported',
            `Population code must be one of ${POPULATION_CODES.join(', ')}`,
            `${at}.code`,
          ),
        );
        return;
      }
      if (populations[code]) issues.push(issue('error', 'invalid', `Population ${code} is repeated`, `${at}.code`));
      const criteria = compileCriteria(p.criteria, at, issues);
      if (criteria) populations[code] = criteria;
    });
    for (const required of ['initial-population', 'numerator'] as const) {
      if (!group.population?.some((p) => populationCode(p.code) === required)) {
        issues.push(
          issue('error', 'required', `A proportion group needs a ${required}`, `Measure.group[${g}].population`),
        );
      }
    }
    const stratifiers = (group.stratifier ?? []).flatMap((s, i): CompiledStratifier[] => {
      const criteria = compileCriteria(s.criteria, `Measure.group[${g}].stratifier[${i}]`, issues);
      return criteria ? [{ code: s.code, key: s.code?.coding?.[0]?.code ?? s.code?.text ?? String(i), criteria }] : [];
    });
    return { id: group.id, code: group.code, populations, stratifiers };
  });
  if (issues.length) throw new MeasureDefinitionError(issues);
  const types = new Set<string>();
  for (const m of JSON.stringify(measure.group).matchAll(/ofType\(\s*(?:FHIR\.)?([A-Z][A-Za-z]+)\s*\)/g))
    types.add(m[1]);
  return { url: measure.url, version: measure.version, resource: measure, groups, types: [...types] };
}
