import type { JsonObject } from './json';
import type { Terminology } from './terminology';
import { UCUM, ucumProblem } from './ucum';

/**
 * The check of a system and code wherever they appear, whatever the binding (the HL7 validator makes
 * it too), on a Coding or on a Quantity (and Age, Count, Distance, Duration), which carry the unit's
 * system and code under the same names: a code of a code system we hold in full must be one of its
 * codes, and a UCUM unit must be valid UCUM. Systems we do not hold in full (SNOMED CT, LOINC,
 * RxNorm) are not judged.
 */
export function codingProblem(terminology: Terminology, coding: JsonObject): string | undefined {
  const { system, code } = coding;
  // An empty code is already an invalid primitive; it is not also an unknown one.
  if (typeof system !== 'string' || typeof code !== 'string' || code === '') return undefined;
  if (system === UCUM) return ucumProblem(code);
  return unknownCode(terminology, system, code);
}

function unknownCode(terminology: Terminology, system: string, code: string): string | undefined {
  const held = terminology.heldCodeSystem(system);
  if (!held || held.has(code)) return undefined;
  const version = held.version ? ` version '${held.version}'` : '';
  return `Unknown code '${code}' in the CodeSystem '${system}'${version}`;
}
