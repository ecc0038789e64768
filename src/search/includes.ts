import type { CurrentDocument } from '../store/documents';
import type { Reader } from '../store/read-view';
import { asFilter } from './compile/element';
import { LIVE } from './compile/query';
import { ownValue, valuePath } from './keys';
import type { IncludeSpec } from './parse';
import type { SearchParameterRegistry } from './registry';

/** Bounds on what includes may add to one page (HAPI has a similar cap), and on :iterate depth. */
export const MAX_INCLUDED = 1000;
const MAX_ROUNDS = 4;

export interface Included {
  type: string;
  doc: CurrentDocument;
}

const keyOf = (type: string, id: string) => `${type}/${id}`;

function referencesOf(doc: CurrentDocument, code: string): string[] {
  const stored = ownValue(doc.sp, valuePath(code).slice(3));
  const elements = Array.isArray(stored) ? stored : stored ? [stored] : [];
  return elements.map((e) => (e as { r?: string }).r).filter((r): r is string => typeof r === 'string');
}

function referenceParams(registry: SearchParameterRegistry, type: string, spec: IncludeSpec): string[] {
  if (spec.param === '*')
    return registry
      .forType(type)
      .filter((p) => p.type === 'reference' && p.status === 'active')
      .map((p) => p.code);
  return [spec.param];
}

/** Reads referenced resources one `_id` look-up at a time: the fast path on every engine. */
async function readByIds(reader: Reader, references: string[]): Promise<Included[]> {
  const result: Included[] = [];
  const batch = 16;
  for (let i = 0; i < references.length; i += batch) {
    const found = await Promise.all(
      references.slice(i, i + batch).map(async (reference) => {
        const [type, id] = reference.split('/');
        const doc = await reader.findOne<CurrentDocument>(type, { _id: id });
        return doc && !doc.deleted ? { type, doc } : undefined;
      }),
    );
    for (const f of found) if (f) result.push(f);
  }
  return result;
}

/**
 * _include and _revinclude (R4 search, "Including other resources"): the first round applies every
 * spec to the matches; later rounds apply the :iterate specs to what the previous round added.
 */
export async function loadIncludes(
  reader: Reader,
  registry: SearchParameterRegistry,
  matches: Included[],
  specs: IncludeSpec[],
): Promise<Included[]> {
  const seen = new Set(matches.map((m) => keyOf(m.type, m.doc._id)));
  const included: Included[] = [];
  let sources = matches;
  for (let round = 0; round < MAX_ROUNDS && sources.length && specs.length; round++) {
    const active = round === 0 ? specs : specs.filter((s) => s.iterate);
    const added: Included[] = [];
    for (const spec of active) {
      if (included.length + added.length >= MAX_INCLUDED) break;
      const found =
        spec.kind === 'include'
          ? await include(reader, registry, sources, spec)
          : await revinclude(reader, sources, spec);
      for (const item of found) {
        const key = keyOf(item.type, item.doc._id);
        if (seen.has(key) || included.length + added.length >= MAX_INCLUDED) continue;
        seen.add(key);
        added.push(item);
      }
    }
    included.push(...added);
    sources = added;
  }
  return included;
}

async function include(
  reader: Reader,
  registry: SearchParameterRegistry,
  sources: Included[],
  spec: IncludeSpec,
): Promise<Included[]> {
  const references = new Set<string>();
  for (const source of sources) {
    if (spec.sourceType !== '*' && source.type !== spec.sourceType) continue;
    for (const code of referenceParams(registry, source.type, spec)) {
      for (const reference of referencesOf(source.doc, code)) {
        if (!spec.targetType || reference.startsWith(`${spec.targetType}/`)) references.add(reference);
      }
    }
  }
  return readByIds(reader, [...references]);
}

async function revinclude(reader: Reader, sources: Included[], spec: IncludeSpec): Promise<Included[]> {
  if (spec.sourceType === '*') return [];
  const references = sources
    .filter((s) => !spec.targetType || s.type === spec.targetType)
    .map((s) => keyOf(s.type, s.doc._id));
  if (!references.length) return [];
  const docs = await reader.find<CurrentDocument>(
    spec.sourceType,
    asFilter({ ...LIVE, [`${valuePath(spec.param)}.r`]: { $in: references } }),
    { limit: MAX_INCLUDED },
  );
  return docs.map((doc) => ({ type: spec.sourceType, doc }));
}
