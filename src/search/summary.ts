import type { Coding, ElementDefinition, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { loadR4Bundle } from '../fhir/definitions';
import { copyNumberText } from '../fhir/number-text';
import type { SummaryMode } from './parse';

interface TopLevel {
  summary: Set<string>;
  mandatory: Set<string>;
}

let topLevel: Map<string, TopLevel> | undefined;

/** The top-level elements of each type marked isSummary / min > 0 in the R4 StructureDefinitions. */
function elementsOf(type: string): TopLevel {
  if (!topLevel) {
    topLevel = new Map();
    for (const entry of loadR4Bundle('profiles-resources.json').entry ?? []) {
      const sd = entry.resource as StructureDefinition | undefined;
      if (sd?.resourceType !== 'StructureDefinition' || sd.kind !== 'resource') continue;
      const info: TopLevel = { summary: new Set(), mandatory: new Set() };
      for (const element of (sd.snapshot?.element ?? []) as ElementDefinition[]) {
        const parts = element.path?.split('.') ?? [];
        if (parts.length !== 2) continue;
        const name = parts[1].replace('[x]', '');
        if (element.isSummary) info.summary.add(name);
        if ((element.min ?? 0) > 0) info.mandatory.add(name);
      }
      topLevel.set(sd.type, info);
    }
  }
  return topLevel.get(type) ?? { summary: new Set(), mandatory: new Set() };
}

/** Whether JSON property `key` is element `name` (choice elements: valueQuantity is value[x]). */
function isElement(key: string, names: Set<string>): boolean {
  const base = key.startsWith('_') ? key.slice(1) : key;
  if (names.has(base)) return true;
  const choice = /^([a-z][A-Za-z]*?)[A-Z]/.exec(base);
  return !!choice && names.has(choice[1]);
}

const SUBSETTED: Coding = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

function markSubsetted(resource: Resource): Resource {
  const meta = { ...(resource.meta ?? {}) };
  meta.tag = [...(meta.tag ?? []), SUBSETTED];
  return { ...resource, meta } as Resource;
}

/**
 * _summary and _elements (R4 search, "Summary" and "Elements"): a copy of the resource with the chosen
 * top-level elements, marked SUBSETTED. id, meta and mandatory elements are always kept.
 */
export function subset(resource: Resource, summary?: SummaryMode, elements?: string[]): Resource {
  if ((!summary || summary === 'false' || summary === 'count') && !elements) return resource;
  const info = elementsOf(resource.resourceType);
  const keep = (key: string): boolean => {
    if (key === 'resourceType' || key === 'id' || key === 'meta') return true;
    if (elements) return isElement(key, new Set(elements)) || isElement(key, info.mandatory);
    switch (summary) {
      case 'true':
        return isElement(key, info.summary);
      case 'text':
        return key === 'text' || isElement(key, info.mandatory);
      case 'data':
        return key !== 'text';
      default:
        return true;
    }
  };
  const result = Object.fromEntries(Object.entries(resource).filter(([key]) => keep(key))) as unknown as Resource;
  copyNumberText(resource, result);
  return markSubsetted(result);
}
