import type { Resource } from '@medplum/fhirtypes';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The official SQL-on-FHIR v2 test suite, read from ../shared/sql-on-fhir-tests beside the repository
 * (where CI puts it). A missing suite is an error, never a silently empty test run.
 */
export const SUITE_DIR = resolve(__dirname, '..', '..', '..', 'shared', 'sql-on-fhir-tests');

export interface SuiteCase {
  file: string;
  title: string;
  tags: string[];
  view: Record<string, unknown>;
  expect?: Record<string, unknown>[];
  expectCount?: number;
  expectError?: boolean;
  expectColumns?: string[];
}

export interface SuiteFile {
  file: string;
  resources: Resource[];
  cases: SuiteCase[];
}

export function loadSuite(): SuiteFile[] {
  if (!existsSync(SUITE_DIR)) {
    throw new Error(`The SQL-on-FHIR test suite is missing: expected it at ${SUITE_DIR} (../shared/sql-on-fhir-tests)`);
  }
  const files = readdirSync(SUITE_DIR)
    .filter((f) => f.endsWith('.json') && f !== 'tests.schema.json')
    .sort();
  if (!files.length) throw new Error(`${SUITE_DIR} holds no test files`);
  return files.map((file) => {
    const parsed = JSON.parse(readFileSync(join(SUITE_DIR, file), 'utf8')) as {
      resources: Resource[];
      tests: Omit<SuiteCase, 'file'>[];
    };
    return {
      file,
      resources: parsed.resources,
      cases: parsed.tests.map((t) => ({ ...t, tags: t.tags ?? [], file })),
    };
  });
}

/** The cases the specification marks shareable: every implementation must pass them. */
export function isShareable(c: SuiteCase): boolean {
  return c.tags.includes('shareable');
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** Rows as the suite compares them: as a multiset, whatever the order of rows or of keys. */
export function comparableRows(rows: unknown[]): string[] {
  return rows.map((r) => JSON.stringify(canonical(r))).sort();
}
