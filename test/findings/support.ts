import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import type { Express } from 'express';
import request from 'supertest';
import { loadConfig, type FindingsConfig } from '../../src/config';
import { FHIR_JSON } from '../support/server';

const SCENARIOS = path.join(__dirname, '../fixtures/checks/scenarios');

/** The engine's scenario patients (test/fixtures/checks/scenarios), dated around 2026-06-30. */
export function scenario(name: string): Resource[] {
  return JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.resources.json`), 'utf8')) as Resource[];
}

/** Findings on, with a clock the tests move, and workers that look often. */
export function findingsOn(overrides: Partial<FindingsConfig> = {}): { findings: FindingsConfig } {
  return {
    findings: { ...loadConfig({}).findings, enabled: true, clock: 'test', pollMs: 100, delayMs: 20, ...overrides },
  };
}

/** An EHR sync: one transaction Bundle of PUTs. */
export function syncBundle(resources: Resource[]): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: resources.map((resource) => ({
      resource,
      request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` },
    })),
  };
}

export async function sync(app: Express, resources: Resource[] | Bundle): Promise<void> {
  const bundle = Array.isArray(resources) ? syncBundle(resources) : resources;
  const response = await request(app).post('/fhir').set('Content-Type', FHIR_JSON).send(bundle);
  if (response.status !== 200) throw new Error(`transaction: ${response.status} ${JSON.stringify(response.body)}`);
}

/** Moves the findings clock of every server on the database to noon (UTC) of `date`. */
export async function moveClock(app: Express, date: string): Promise<{ swept: boolean }> {
  const response = await request(app).post(`/fhir/$test-clock?date=${date}`);
  if (response.status !== 200) throw new Error(`$test-clock: ${response.status} ${JSON.stringify(response.body)}`);
  const swept = response.body.parameter.find((p: { name: string }) => p.name === 'swept').valueBoolean as boolean;
  return { swept };
}

/** Waits until the findings queue is empty (every queued evaluation done), as /readyz reports it. */
export async function settled(app: Express, timeoutMs = 120_000): Promise<void> {
  const started = Date.now();
  for (;;) {
    const response = await request(app).get('/readyz');
    if (response.status === 200 && response.body.findingsQueue === 0) return;
    if (Date.now() - started > timeoutMs) throw new Error(`findings queue not empty within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every finding of a type for a patient, with its versions. */
export async function findingsOf(app: Express, type: 'DetectedIssue' | 'Task', patient: string) {
  const response = await request(app).get(`/fhir/${type}?patient=Patient/${patient}&_count=100`);
  if (response.status !== 200) throw new Error(`search: ${response.status} ${JSON.stringify(response.body)}`);
  return ((response.body as Bundle).entry ?? []).map((e) => e.resource as Resource & Record<string, unknown>);
}

/** A scenario under other ids (every occurrence of its name replaced), so one database holds several copies. */
export function renamed(name: string, as: string): Resource[] {
  return JSON.parse(JSON.stringify(scenario(name)).split(name).join(as)) as Resource[];
}
