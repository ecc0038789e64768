import type { BenchQuery } from './search-queries';

/**
 * The default string search (case- and accent-insensitive prefix) and token searches on multi-valued
 * paths, which the engine's multikey indexes answer; timed by bench/search.ts after the main mix.
 */
export const STRING_AND_TOKEN_QUERIES: BenchQuery[] = [
  {
    name: 'Patient?name= prefix (family or given)',
    type: 'Patient',
    query: (i) => `name=FAMILY${i % 997}`,
    index: 'sp_name',
  },
  {
    name: 'Patient?identifier= token',
    type: 'Patient',
    query: (i) => `identifier=urn:mrn|MRN${i}`,
    index: 'sp_identifier',
  },
  {
    name: 'Observation?code= token (multi-coding path)',
    type: 'Observation',
    query: (i) => `code=http://loinc.org|44249-1&patient=Patient/p${i}`,
    index: 'sp_patient_code_date',
  },
];
