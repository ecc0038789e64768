/** The benchmark's query mix (issue 4), parameterised by a patient number so runs vary the data hit. */
export interface BenchQuery {
  name: string;
  type: string;
  query: (i: number) => string;
  /** Follow this many next links first and time the last page (deep paging). */
  page?: number;
}

export const QUERIES: BenchQuery[] = [
  {
    name: "patient's active MedicationRequests + Medications",
    type: 'MedicationRequest',
    query: (i) => `patient=Patient/p${i}&status=active&_include=MedicationRequest:medication`,
  },
  {
    name: 'dispenses of a prescription in a date range',
    type: 'MedicationDispense',
    query: (i) => `prescription=MedicationRequest/mr${i}-0&whenhandedover=ge2024-01-01&whenhandedover=lt2025-01-01`,
  },
  {
    name: 'observations by code and date',
    type: 'Observation',
    query: (i) =>
      `code=http://loinc.org|44249-1&date=ge2024-${String((i % 12) + 1).padStart(2, '0')}-01&date=lt2024-${String((i % 12) + 1).padStart(2, '0')}-08&_count=50`,
  },
  {
    name: 'care plans with an overdue activity',
    type: 'CarePlan',
    query: () => `status=active&activity-date=lt2024-03-01&_count=50`,
  },
  {
    name: 'page 50 of a sorted analyst query',
    type: 'MedicationRequest',
    query: () => `status=active&_sort=-authoredon&_count=20`,
    page: 50,
  },
];
