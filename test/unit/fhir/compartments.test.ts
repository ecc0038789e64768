import type { Resource } from '@medplum/fhirtypes';
import { compartmentsOf } from '../../../src/fhir/compartments';

describe('Patient compartments from the R4 CompartmentDefinition', () => {
  it.each<[string, Resource, string[]]>([
    [
      "a dispense is in its subject's compartment, not its performer's",
      {
        resourceType: 'MedicationDispense',
        status: 'completed',
        subject: { reference: 'Patient/p1' },
        performer: [{ actor: { reference: 'Practitioner/x' } }],
      },
      ['Patient/p1'],
    ],
    [
      'an observation is in the compartments of its subject and of a patient performer; absolute references count',
      {
        resourceType: 'Observation',
        status: 'final',
        code: {},
        subject: { reference: 'http://ehr.example/fhir/Patient/p2' },
        performer: [{ reference: 'Patient/p3' }],
      },
      ['Patient/p2', 'Patient/p3'],
    ],
    [
      'a patient is in its own compartment and in those of linked patients',
      { resourceType: 'Patient', id: 'p9', link: [{ other: { reference: 'Patient/p10' }, type: 'seealso' }] },
      ['Patient/p9', 'Patient/p10'],
    ],
    [
      'a care plan about a group is in no patient compartment',
      { resourceType: 'CarePlan', status: 'active', intent: 'plan', subject: { reference: 'Group/g' } },
      [],
    ],
    ['a type outside the compartment definition', { resourceType: 'Organization', name: 'Clinic' }, []],
  ])('%s', (_name, resource, expected) => {
    expect(compartmentsOf(resource).sort()).toEqual(expected.sort());
  });
});
