import type {
  CodeableConcept,
  Coding,
  Medication,
  MedicationAdministration,
  MedicationDispense,
  MedicationRequest,
  MedicationStatement,
  Reference,
  Resource,
} from '@medplum/fhirtypes';
import { ATC, RXNORM } from './classes';

/**
 * What a MedicationRequest / Dispense / Statement / Administration is "of": its codings (product and
 * ingredients, for class membership), a drug identity (for PQA's same-drug shifting) and its ingredients
 * with strengths (for MME). The medication may be a CodeableConcept, a contained Medication or a
 * referenced Medication; ingredients may themselves reference Medications.
 */

export type MedicationBearing = MedicationRequest | MedicationDispense | MedicationStatement | MedicationAdministration;

export interface Ingredient {
  codings: Coding[];
  /** Lower-case ingredient name (from the coding display, text or RxNorm product name). */
  name?: string;
  /** Strength per unit of the product, when known (from Medication.ingredient.strength or the RxNorm name). */
  strength?: { value: number; unit: string; perValue: number; perUnit?: string };
}

export interface MedicationInfo {
  codings: Coding[];
  ingredients: Ingredient[];
  /** Display or text of the product, e.g. "oxycodone hydrochloride 10 MG Oral Tablet". */
  name?: string;
  /**
   * Same-drug identity: the sorted active ingredients. Two products of the same ingredient(s), whatever
   * the strength or brand, share it, which is what PQA means by "the same drug".
   */
  drugKey: string;
}

/** Look-up of resources by `Type/id`, built once per review. */
export type ResourceIndex = ReadonlyMap<string, Resource>;

export function indexResources(resources: readonly Resource[]): Map<string, Resource> {
  const map = new Map<string, Resource>();
  for (const r of resources) if (r.id) map.set(`${r.resourceType}/${r.id}`, r);
  return map;
}

export function referenceKey(reference: string | undefined): string | undefined {
  if (!reference) return undefined;
  // Absolute and versioned references reduce to Type/id.
  const parts = reference.split('/_history/')[0].split('/');
  return parts.length >= 2 ? `${parts[parts.length - 2]}/${parts[parts.length - 1]}` : undefined;
}

export function resolveReference<T extends Resource>(
  ref: Reference | undefined,
  index: ResourceIndex,
  container?: Resource,
): T | undefined {
  const reference = ref?.reference;
  if (!reference) return undefined;
  if (reference.startsWith('#')) {
    const contained = (container as { contained?: Resource[] } | undefined)?.contained;
    return contained?.find((c) => c.id === reference.slice(1)) as T | undefined;
  }
  const key = referenceKey(reference);
  return key ? (index.get(key) as T | undefined) : undefined;
}

const STRENGTH_IN_NAME = /^(.*?)\s+([\d.]+)\s*(MG|MCG|G|UNT|MEQ|ML|MG\/ML|MG\/HR|MCG\/HR|MG\/ACTUAT|MCG\/ACTUAT)\b/i;

/**
 * Ingredients and strengths parsed from an RxNorm clinical drug name such as
 * "buprenorphine 8 MG / naloxone 2 MG Sublingual Film" or "72 HR fentanyl 0.025 MG/HR Transdermal System".
 */
export function parseRxNormName(name: string): Ingredient[] {
  const cleaned = name
    .replace(/\[[^\]]*\]/g, '')
    .replace(/^\d+\s*HR\s+/i, '')
    .replace(/^\{\d+\s*\(/, '')
    .trim();
  const result: Ingredient[] = [];
  for (const part of cleaned.split(' / ')) {
    const m = STRENGTH_IN_NAME.exec(part.trim());
    if (!m) continue;
    const unit = m[3].toLowerCase();
    const [valueUnit, perUnit] = unit.split('/');
    result.push({
      codings: [],
      name: normaliseIngredientName(m[1]),
      strength: { value: Number(m[2]), unit: valueUnit, perValue: 1, perUnit },
    });
  }
  return result;
}

/** "oxycodone hydrochloride" → "oxycodone": salts do not make another drug. */
export function normaliseIngredientName(name: string): string {
  return name
    .toLowerCase()
    .replace(
      /\b(hydrochloride|hcl|sulfate|sulphate|bitartrate|tartrate|citrate|phosphate|sodium|potassium|calcium|maleate|mesylate|besylate|succinate|fumarate|acetate|bromide|hydrobromide|oxalate|pamoate|extended release|er)\b/g,
      '',
    )
    .replace(/\s+/g, ' ')
    .trim();
}

function conceptName(cc: CodeableConcept | undefined): string | undefined {
  return cc?.text ?? cc?.coding?.find((c) => c.system === RXNORM && c.display)?.display ?? cc?.coding?.[0]?.display;
}

function ingredientsOfMedication(med: Medication, index: ResourceIndex, depth: number): Ingredient[] {
  const result: Ingredient[] = [];
  for (const ing of med.ingredient ?? []) {
    if (ing.isActive === false) continue;
    let codings = ing.itemCodeableConcept?.coding ?? [];
    let name = conceptName(ing.itemCodeableConcept);
    if (ing.itemReference && depth < 2) {
      const ref = resolveReference<Medication>(ing.itemReference, index, med);
      if (ref?.resourceType === 'Medication') {
        codings = [...codings, ...(ref.code?.coding ?? [])];
        name = name ?? conceptName(ref.code);
      }
      name = name ?? ing.itemReference.display;
    }
    const num = ing.strength?.numerator;
    const den = ing.strength?.denominator;
    result.push({
      codings,
      name: name ? normaliseIngredientName(name) : undefined,
      strength:
        num?.value !== undefined
          ? {
              value: num.value,
              unit: (num.code ?? num.unit ?? '').toLowerCase(),
              perValue: den?.value ?? 1,
              perUnit: (den?.code ?? den?.unit)?.toLowerCase(),
            }
          : undefined,
    });
  }
  return result;
}

function drugKeyOf(ingredients: Ingredient[], codings: Coding[], name: string | undefined): string {
  const ids = ingredients.map(
    (i) =>
      i.codings.find((c) => c.system === RXNORM)?.code ??
      i.codings.find((c) => c.system === ATC)?.code ??
      i.name ??
      i.codings[0]?.code ??
      '?',
  );
  if (ingredients.length && !ids.includes('?')) {
    // Prefer names when every ingredient has one, so "oxycodone" from a Medication and "oxycodone" parsed
    // from an RxNorm product name agree.
    const names = ingredients.map((i) => i.name);
    return (names.every((n) => n) ? (names as string[]) : ids).slice().sort().join('+');
  }
  const atc = codings.find((c) => c.system === ATC)?.code;
  if (atc && atc.length === 7) return atc;
  return name?.toLowerCase() ?? codings.map((c) => `${c.system}|${c.code}`).join(',');
}

const infoCache = new WeakMap<object, MedicationInfo>();

/** The medication of a medication-bearing resource (cached per resource object). */
export function medicationOf(resource: MedicationBearing, index: ResourceIndex): MedicationInfo {
  const cached = infoCache.get(resource);
  if (cached) return cached;
  let codings: Coding[] = [];
  let ingredients: Ingredient[] = [];
  let name: string | undefined;
  if (resource.medicationCodeableConcept) {
    codings = resource.medicationCodeableConcept.coding ?? [];
    name = conceptName(resource.medicationCodeableConcept);
  } else if (resource.medicationReference) {
    const med = resolveReference<Medication>(resource.medicationReference, index, resource);
    if (med?.resourceType === 'Medication') {
      codings = med.code?.coding ?? [];
      name = conceptName(med.code);
      ingredients = ingredientsOfMedication(med, index, 0);
    }
    name = name ?? resource.medicationReference.display;
  }
  if (!ingredients.length && name) ingredients = parseRxNormName(name);
  else if (name) {
    // Fill in strengths missing from the Medication resource from its RxNorm name.
    const parsed = parseRxNormName(name);
    ingredients = ingredients.map((i) =>
      i.strength ? i : { ...i, strength: parsed.find((p) => p.name === i.name)?.strength },
    );
  }
  const allCodings = [...codings, ...ingredients.flatMap((i) => i.codings)];
  const info: MedicationInfo = {
    codings: allCodings,
    ingredients,
    name,
    drugKey: drugKeyOf(ingredients, codings, name),
  };
  infoCache.set(resource, info);
  return info;
}
