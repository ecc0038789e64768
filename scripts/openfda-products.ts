/**
 * Builds the product value sets of terminology/openfda/ from the openFDA NDC Directory records transcribed in
 * terminology/sources/openfda/ndc-directory.tsv: per value set, the RxCUIs openFDA attaches to the records
 * (those not already named by another transcribed source) and the records' product NDCs.
 *
 *   npx tsx scripts/openfda-products.ts        rewrites terminology/openfda/*.json
 *
 * test/unit/checks/class-products.test.ts fails when the shipped files differ from what this builds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ValueSet, ValueSetComposeInclude } from '@medplum/fhirtypes';

const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const NDC = 'http://hl7.org/fhir/sid/ndc';
const TERMINOLOGY = path.join(__dirname, '..', 'terminology');
export const OPENFDA_SOURCE = path.join(TERMINOLOGY, 'sources', 'openfda', 'ndc-directory.tsv');
export const OPENFDA_DIR = path.join(TERMINOLOGY, 'openfda');

export interface OpenFdaRecord {
  valueSet: string;
  productNdc: string;
  labeler: string;
  brand: string;
  ingredients: string;
  rxcuis: string[];
  search: string;
}

/** What each built value set is, by the key the records name. */
const SETS: Record<string, { id?: string; title: string; description: string }> = {
  'diabetes-non-insulin': {
    title: 'Non-insulin diabetes medication products in the openFDA NDC Directory',
    description:
      'Biguanides, DPP-4 inhibitors, SGLT2 inhibitors, thiazolidinediones, GLP-1 receptor agonists (liraglutide, dulaglutide, semaglutide, tirzepatide) and their combinations',
  },
  statins: {
    title: 'Statin products in the openFDA NDC Directory',
    description:
      'Atorvastatin (Lipitor), rosuvastatin (Crestor), simvastatin (Zocor), pravastatin, pitavastatin (Livalo, Zypitamag) and fluvastatin (Lescol XL)',
  },
  antidepressants: {
    title: 'Antidepressant products in the openFDA NDC Directory',
    description:
      'Sertraline (Zoloft), fluoxetine (Prozac), citalopram (Celexa), paroxetine (Paxil), venlafaxine (Effexor XR), duloxetine, vortioxetine (Trintellix), bupropion (Wellbutrin XL) and desvenlafaxine (Pristiq)',
  },
  'ras-antagonists': {
    title: 'RAS antagonist products in the openFDA NDC Directory',
    description: 'Losartan',
  },
  insulin: {
    title: 'Insulin products in the openFDA NDC Directory',
    description:
      'Insulin lispro (Insulin Lispro KwikPen, Admelog), insulin glargine (Basaglar, Toujeo, insulin glargine-yfgn, Langlara), insulin glulisine (Apidra SoloStar) and insulin degludec (Tresiba)',
  },
  'sacubitril-valsartan': {
    // Named by the class itself, not by its source: PQA's PDC-RASA leaves these products out, and a
    // measure or a review sets them aside by this url.
    id: 'sacubitril-valsartan',
    title: 'Sacubitril / valsartan (ARNI) products',
    description: 'Sacubitril / valsartan (Entresto and its generics)',
  },
};

/** The records of the transcribed openFDA source, in file order. */
export function readOpenFdaRecords(text: string): OpenFdaRecord[] {
  return text
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('#'))
    .map((line) => {
      const [valueSet, productNdc, labeler, brand, ingredients, rxcuis, search] = line.split('\t');
      return {
        valueSet,
        productNdc,
        labeler,
        brand,
        ingredients,
        rxcuis: rxcuis ? rxcuis.split(',') : [],
        search,
      };
    });
}

/** code → name of every row of the transcribed RxNorm sources (terminology/sources/*.tsv). */
export function namedRxNormCodes(dir = path.join(TERMINOLOGY, 'sources')): Map<string, string> {
  const rows = new Map<string, string>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.tsv'))) {
    for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      if (!line.trim() || line.startsWith('#')) continue;
      const [code, display] = line.split('\t');
      rows.set(code, display);
    }
  }
  return rows;
}

/** "SITAGLIPTIN PHOSPHATE 50 mg/1; METFORMIN HYDROCHLORIDE 1000 mg/1" → "sitagliptin phosphate / metformin hydrochloride". */
function ingredientNames(ingredients: string): string {
  return ingredients
    .split(';')
    .map((part) =>
      part
        .trim()
        .replace(/\s+[\d.]+\s*\S*\/\S*.*$/, '')
        .toLowerCase(),
    )
    .join(' / ');
}

/** The id of the value set built for a key of the records. */
export const openFdaValueSetId = (key: string): string => SETS[key]?.id ?? `${key}-openfda`;

/**
 * One ValueSet per key of the records. RxCUIs another source names already (the VSAC expansions, the
 * curated lists) are left to that source, except in the sacubitril / valsartan set, which exists to name
 * every such product in one place. openFDA gives no RxNorm names, so an RxCUI's display says which record
 * it comes from rather than pretending to be the RxNorm string.
 */
export function buildOpenFdaValueSets(records: OpenFdaRecord[], named: Map<string, string>): ValueSet[] {
  const keys = [...new Set(records.map((r) => r.valueSet))];
  return keys.map((key) => {
    const own = records.filter((r) => r.valueSet === key);
    const meta = SETS[key];
    if (!meta) throw new Error(`${OPENFDA_SOURCE}: no description for value set ${key}`);
    const keepNamed = key === 'sacubitril-valsartan';
    const rxnorm = new Map<string, string>();
    // The ARNI set also names the clinical drugs the eCQM set lists, so that it holds every such product.
    if (keepNamed) for (const [code, name] of named) if (/sacubitril/i.test(name)) rxnorm.set(code, name);
    for (const r of own) {
      for (const code of r.rxcuis) {
        if (rxnorm.has(code)) continue;
        const name = named.get(code);
        if (name !== undefined && !keepNamed) continue;
        rxnorm.set(code, name ?? `${ingredientNames(r.ingredients)} product (openFDA: ${r.brand} ${r.productNdc})`);
      }
    }
    const ndc = new Map<string, string>();
    for (const r of own) {
      if (!ndc.has(r.productNdc)) ndc.set(r.productNdc, `${r.brand} (${r.ingredients}), ${r.labeler}`);
    }
    const include: ValueSetComposeInclude[] = [];
    if (rxnorm.size) {
      include.push({
        system: RXNORM,
        concept: [...rxnorm].sort(([a], [b]) => a.localeCompare(b)).map(([code, display]) => ({ code, display })),
      });
    }
    include.push({
      system: NDC,
      concept: [...ndc].sort(([a], [b]) => a.localeCompare(b)).map(([code, display]) => ({ code, display })),
    });
    return {
      resourceType: 'ValueSet',
      id: openFdaValueSetId(key),
      url: `https://meds-fhir.org/fhir/ValueSet/${openFdaValueSetId(key)}`,
      version: '0.3.0',
      name: openFdaValueSetId(key).replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase()),
      title: meta.title,
      status: 'active',
      experimental: false,
      publisher: 'meds-fhir',
      description: `${meta.description}: the product NDCs (labeler-product; any package of a product matches) of ${own.length} FDA NDC Directory listings as served by openFDA, and the RxCUIs openFDA attaches to them (SCD and SBD of the whole label). Transcribed in terminology/sources/openfda/ndc-directory.tsv; built by scripts/openfda-products.ts. Sources: terminology/README.md.`,
      compose: { include },
    };
  });
}

if (require.main === module) {
  const sets = buildOpenFdaValueSets(readOpenFdaRecords(fs.readFileSync(OPENFDA_SOURCE, 'utf8')), namedRxNormCodes());
  fs.mkdirSync(OPENFDA_DIR, { recursive: true });
  for (const vs of sets) {
    fs.writeFileSync(path.join(OPENFDA_DIR, `${vs.id}.json`), JSON.stringify(vs, null, 2) + '\n');
  }
  console.log(`wrote ${sets.length} value sets to ${OPENFDA_DIR}`);
}
