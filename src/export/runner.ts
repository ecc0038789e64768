import type { Resource } from '@medplum/fhirtypes';
import { inPatientCompartment } from '../auth/access-policy';
import { stringifyJson } from '../fhir/json-text';
import type { ServerContext } from '../rest/context';
import { readRestriction } from '../rest/router';
import { allOf, anyOf, NOTHING, type MongoFilter } from '../search/compile/element';
import { subset } from '../search/summary';
import type { CurrentDocument } from '../store/documents';
import { CHUNK_CHARS, type ExportFiles } from './files';
import { restoreRequester } from '../auth/stored-requester';
import type { ExportCursor, ExportJob, ExportJobs, JobRunner } from './jobs';

/** Documents per keyset page of the database: what the runner holds at most, with one chunk of text. */
const BATCH = 200;

export interface RunnerDeps {
  context: ServerContext;
  jobs: ExportJobs;
  files: ExportFiles;
  runner: JobRunner;
  /** True once the process is shutting down: the job stops after its current chunk and resumes elsewhere. */
  stopping: () => boolean;
  /** After every chunk is recorded (tests stop a server there). */
  afterChunk?: (job: ExportJob) => void | Promise<void>;
}

import type { RunResult } from '../jobs/job-worker';

export type { RunResult };

/** The elements of `_elements` that apply to `type` (unqualified ones apply to every type). */
function elementsFor(elements: string[] | undefined, type: string): string[] | undefined {
  if (!elements) return undefined;
  const names = elements.flatMap((e) => {
    const [first, second] = e.split('.');
    if (second === undefined) return [first];
    return first === type ? [second] : [];
  });
  return names.length ? names : undefined;
}

/** What a resource of `type` must match to be exported (besides the requester's own restriction). */
async function typeFilter(job: ExportJob, type: string, context: ServerContext): Promise<MongoFilter> {
  const parts: MongoFilter[] = [{ deleted: { $ne: true } }];
  if (job.since) parts.push({ ts: { $gt: job.since } });
  if (job.level !== 'system' && (type === 'Patient' || inPatientCompartment(type))) {
    parts.push(
      job.patients
        ? { compartments: { $in: job.patients.map((p) => `Patient/${p}`) } }
        : { compartments: { $regex: '^Patient/' } },
    );
  }
  const queries = job.typeFilters.filter((f) => f.type === type);
  if (queries.length) {
    const compile = context.compileQuery;
    if (!compile) throw new Error('_typeFilter needs the search module');
    const compiled = await Promise.all(
      queries.map((q) => compile(type, [...new URLSearchParams(q.query).entries()], job.baseUrl)),
    );
    parts.push(anyOf(compiled));
  }
  return allOf(parts);
}

/**
 * Runs (or resumes) one export: for each type, keyset pages in _id order through the
 * requester's restricted reader, written as NDJSON chunks. After each chunk the job records where it
 * got to, in one compare-and-set; a runner that stopped between the chunk and the record left a chunk
 * that the next runner removes before it goes on from the record, so each resource is written once.
 */
export async function runExport(job: ExportJob, deps: RunnerDeps): Promise<RunResult> {
  const { context, jobs, files, runner } = deps;
  const policy = await context.access.policyFor(restoreRequester(job.requester));
  const reads = context.store.readView(readRestriction(policy));
  const cursor: ExportCursor = job.cursor ?? { typeIndex: 0, after: null, file: 0, chunk: 0, inFile: 0 };
  await files.removeFrom(job._id, cursor.file, cursor.chunk);
  let done = job.done;
  const output = [...job.output];
  const elementsOf = (type: string) => elementsFor(job.elements, type);

  const record = async (next: ExportCursor): Promise<boolean> => {
    if (!(await jobs.update(job._id, runner, { cursor: next, done, output }))) return false;
    Object.assign(cursor, next);
    await deps.afterChunk?.({ ...job, cursor: next, done, output });
    return true;
  };

  for (; cursor.typeIndex < job.types.length;) {
    const type = job.types[cursor.typeIndex];
    const visible = policy.filter(type, ['r', 's']);
    const filter = visible === NOTHING ? NOTHING : await typeFilter(job, type, context);
    const range = cursor.after === null ? filter : allOf([filter, { _id: { $gt: cursor.after } }]);
    let text = '';
    let lines = 0;
    let last = cursor.after;
    const flush = async (closeFile: boolean): Promise<boolean> => {
      await files.write(job._id, cursor.file, cursor.chunk, text);
      done += lines;
      const inFile = cursor.inFile + lines;
      text = '';
      lines = 0;
      if (!closeFile) return record({ ...cursor, after: last, chunk: cursor.chunk + 1, inFile });
      output.push({ type, file: cursor.file, count: inFile, chunks: cursor.chunk + 1 });
      return record({ ...cursor, after: last, file: cursor.file + 1, chunk: 0, inFile: 0 });
    };
    if (filter !== NOTHING) {
      const elements = elementsOf(type);
      for await (const doc of reads.streamById<CurrentDocument>(type, range, {
        batchSize: BATCH,
        // The search values are most of a stored document: neither sent nor decoded.
        projection: { _id: 1, resource: 1, nt: 1 },
      })) {
        const resource: Resource = elements ? subset(doc.resource, undefined, elements) : doc.resource;
        text += `${stringifyJson(resource)}\n`;
        lines++;
        last = doc._id;
        const full = cursor.inFile + lines >= context.config.exportFileMaxResources;
        if (full || text.length >= CHUNK_CHARS) {
          if (!(await flush(full))) return 'lost';
          if (deps.stopping()) return 'stopped';
        }
      }
    }
    if (lines > 0 && !(await flush(true))) return 'lost';
    if (cursor.inFile > 0) {
      // The last chunk of the type was written when its text filled up: the file closes without one more.
      output.push({ type, file: cursor.file, count: cursor.inFile, chunks: cursor.chunk });
      if (!(await record({ ...cursor, file: cursor.file + 1, chunk: 0, inFile: 0 }))) return 'lost';
    }
    if (!(await record({ ...cursor, typeIndex: cursor.typeIndex + 1, after: null }))) return 'lost';
    if (deps.stopping()) return 'stopped';
  }
  const expiresAt = new Date(Date.now() + context.config.exportRetentionSeconds * 1000);
  const finished = await jobs.update(job._id, runner, { state: 'completed', expiresAt, runner: null });
  return finished ? 'completed' : 'lost';
}
