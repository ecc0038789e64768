/** The benchmark's query mix (issue 4), parameterised by a patient number so runs vary the data hit. */
export interface BenchQuery {
  name: string;
  type: string;
  query: (i: number) => string;
  /** Follow this many next links first and time the last page (deep paging). */
  page?: number;
  /** The index meant to answer it on MongoDB (src/search/indexes.ts), checked by test/search/explain.test.ts. */
  index: string;
}

export const QUERIES: BenchQuery[] = [
  {
    name: "patient's active MedicationRequests + Medications",
    type: 'MedicationRequest',
    query: (i) => `patient=Patient/p${i}&status=active&_include=MedicationRequest:medication`,
    index: 'sp_patient_status',
  },
  {
    name: 'dispenses of a prescription in a date range',
    type: 'MedicationDispense',
    query: (i) => `prescription=MedicationRequest/mr${i}-0&whenhandedover=ge2024-01-01&whenhandedover=lt2025-01-01`,
    index: 'sp_prescription_handedover',
  },
  {
    name: 'observations by code and date',
    type: 'Observation',
    query: (i) =>
      `code=http://loinc.org|44249-1&date=ge2024-${String((i % 12) + 1).padStart(2, '0')}-01&date=lt2024-${String((i % 12) + 1).padStart(2, '0')}-08&_count=50`,
    index: 'sp_code_date',
  },
  {
    name: 'care plans with an overdue activity',
    type: 'CarePlan',
    query: () => `status=active&activity-date=lt2024-03-01&_count=50`,
    index: 'sp_status_activity_date',
  },
  {
    name: 'page 50 of a sorted analyst query',
    type: 'MedicationRequest',
    query: () => `status=active&_sort=-authoredon&_count=20`,
    page: 50,
    index: 'sp_status_authoredon',
  },
];
