// The typical prescription the validation benchmarks time (bench/validation.ts, bench/validation-ab.ts).

export const PRESCRIPTION = 'http://meds-fhir.example.org/fhir/StructureDefinition/meds-prescription';

/** A typical prescription as an EHR sends it: narrative, identifier, RxNorm code, one dosage, dispense request. */
export const typicalRequest = {
  resourceType: 'MedicationRequest',
  id: 'rx-1001',
  meta: { profile: [PRESCRIPTION] },
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Suboxone 8/2 mg, 2 films daily</div>' },
  identifier: [{ system: 'http://clinic.example.org/rx', value: '1001' }],
  status: 'active',
  intent: 'order',
  medicationCodeableConcept: {
    coding: [
      {
        system: 'http://www.nlm.nih.gov/research/umls/rxnorm',
        code: '1010606',
        display: 'buprenorphine 8 MG / naloxone 2 MG Sublingual Film [Suboxone]',
      },
    ],
  },
  subject: { reference: 'Patient/p-17', display: 'Pat Example' },
  authoredOn: '2026-09-01T10:00:00Z',
  requester: { reference: 'Practitioner/dr-9' },
  dosageInstruction: [
    {
      text: '2 films under the tongue daily',
      timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } },
      route: { coding: [{ system: 'http://snomed.info/sct', code: '37839007', display: 'Sublingual route' }] },
      doseAndRate: [{ doseQuantity: { value: 2, unit: 'film' } }],
    },
  ],
  dispenseRequest: {
    numberOfRepeatsAllowed: 0,
    quantity: { value: 56, unit: 'film' },
    expectedSupplyDuration: { value: 28, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
  },
};
