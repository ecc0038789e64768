import type { Resource } from '@medplum/fhirtypes';
import type { Express } from 'express';
import request from 'supertest';
import { pathOf } from '../support/async-jobs';

export { pathOf };

/** The Bulk Data complete-status body. */
export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: { type: string; url: string }[];
}

/** The path below the host of an absolute URL the server made (its base is http://meds-fhir.test/fhir). */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function withAuth(test: request.Test, authorization?: string): request.Test {
  return authorization ? test.set('Authorization', authorization) : test;
}

/** Sends a kick-off request and answers its status URL (the kick-off must be accepted). */
export async function kickOff(
  app: Express,
  path: string,
  options: { authorization?: string; body?: Resource } = {},
): Promise<string> {
  const test = options.body
    ? request(app).post(path).set('Content-Type', 'application/fhir+json').send(options.body)
    : request(app).get(path);
  const response = await withAuth(
    test.set('Prefer', 'respond-async').set('Accept', 'application/fhir+json'),
    options.authorization,
  );
  if (response.status !== 202) throw new Error(`kick-off ${path}: ${response.status} ${JSON.stringify(response.body)}`);
  return pathOf(response.headers['content-location'] as string);
}

/** Polls a status URL as a client should (waiting Retry-After) until the manifest comes. */
export async function manifestOf(app: Express, status: string, authorization?: string): Promise<Manifest> {
  for (let attempt = 0; attempt < 120; attempt++) {
    const response = await withAuth(request(app).get(status), authorization);
    if (response.status === 200) {
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.headers.expires).toBeTruthy();
      return JSON.parse(response.text) as Manifest;
    }
    if (response.status !== 202) throw new Error(`status: ${response.status} ${JSON.stringify(response.body)}`);
    expect(response.headers['x-progress']).toBeTruthy();
    const retryAfter = Number(response.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    await sleep(retryAfter * 1000 + 20);
  }
  throw new Error(`the export at ${status} did not complete`);
}

/** The resources of one output file. */
export async function download(app: Express, url: string, authorization?: string): Promise<Resource[]> {
  const response = await withAuth(
    request(app).get(pathOf(url)).set('Accept', 'application/fhir+ndjson'),
    authorization,
  );
  if (response.status !== 200) throw new Error(`file ${url}: ${response.status} ${JSON.stringify(response.body)}`);
  expect(response.headers['content-type']).toMatch(/^application\/fhir\+ndjson/);
  return response.text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Resource);
}

/** Every exported resource, by type ("Type/id"), with a check that each file's count is right. */
export async function exported(
  app: Express,
  manifest: Manifest,
  authorization?: string,
): Promise<Map<string, Resource[]>> {
  const byType = new Map<string, Resource[]>();
  for (const file of manifest.output) {
    const resources = await download(app, file.url, authorization);
    expect(resources).toHaveLength(file.count);
    for (const r of resources) expect(r.resourceType).toBe(file.type);
    byType.set(file.type, [...(byType.get(file.type) ?? []), ...resources]);
  }
  return byType;
}

export const idsOf = (resources: Resource[] | undefined): string[] =>
  (resources ?? []).map((r) => r.id as string).sort();
