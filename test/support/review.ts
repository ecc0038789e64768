import type { Parameters, ParametersParameter } from '@medplum/fhirtypes';
import type { Express } from 'express';
import request from 'supertest';

/** Patient/[id]/$medication-review over HTTP: a 200 in FHIR JSON, its Parameters. */
export async function reviewOver(app: Express, patientId: string, query: Record<string, string>): Promise<Parameters> {
  const response = await request(app).get(`/fhir/Patient/${patientId}/$medication-review`).query(query);
  expect(response.status).toBe(200);
  expect(response.headers['content-type']).toMatch(/^application\/fhir\+json/);
  return response.body as Parameters;
}

/** The adherence parameters as flat records, the way the scenarios' .expected.json files write them. */
export function adherenceOf(out: Parameters): Record<string, unknown>[] {
  return (out.parameter ?? [])
    .filter((p) => p.name === 'adherence')
    .map((p) =>
      Object.fromEntries(
        (p.part ?? []).map((x: ParametersParameter) => [
          x.name,
          x.valueCoding?.code ?? x.valueDate ?? x.valueInteger ?? x.valueDecimal ?? x.valueBoolean,
        ]),
      ),
    );
}
