import type { ValueSet, ValueSetExpansionContains } from '@medplum/fhirtypes';
import type { Db } from 'mongodb';
import { badRequest } from '../../fhir/outcome';
import type { CurrentDocument } from '../../store/documents';
import type { Disjunction } from './element';

function flatten(contains: ValueSetExpansionContains[] | undefined, into: string[]): void {
  for (const entry of contains ?? []) {
    if (entry.code) into.push(`${entry.system ?? ''}|${entry.code}`);
    flatten(entry.contains, into);
  }
}

/**
 * Token conditions for `:in` / `:not-in` (R4 search, token): the codes of a ValueSet stored on this
 * server, found by its canonical URL. An expansion wins; otherwise the enumerated concepts of
 * compose.include, and an include of a whole code system matches any code of that system.
 */
export async function valueSetConditions(db: Db, url: string, name: string): Promise<Disjunction> {
  const [canonical, version] = url.split('|');
  const filter: Record<string, unknown> = { 'resource.url': canonical, deleted: { $ne: true } };
  if (version) filter['resource.version'] = version;
  const doc = await db.collection<CurrentDocument>('ValueSet').findOne(filter);
  if (!doc) throw badRequest(`No ValueSet with url ${url} is stored on this server`, name);
  const valueSet = doc.resource as ValueSet;
  const codes: string[] = [];
  const systems: string[] = [];
  if (valueSet.expansion?.contains?.length) flatten(valueSet.expansion.contains, codes);
  else {
    for (const include of valueSet.compose?.include ?? []) {
      if (!include.system) continue;
      if (include.concept?.length) for (const c of include.concept) codes.push(`${include.system}|${c.code}`);
      else if (!include.filter?.length) systems.push(include.system);
    }
  }
  const result: Disjunction = [];
  if (codes.length) result.push({ sc: { $in: codes } });
  for (const system of systems) result.push({ s: system });
  return result;
}
