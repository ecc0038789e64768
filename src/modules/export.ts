import type { Group, OperationOutcome } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { inPatientCompartment } from '../auth/access-policy';
import { policyOf } from '../auth/access-control';
import { isResourceType } from '../fhir/definitions';
import { badRequest, FhirError, gone, issue, notFound, outcome } from '../fhir/outcome';
import { queryValue, textStream, type FhirRequest } from '../fhir/request';
import { ExportFiles } from '../export/files';
import { storeRequester } from '../auth/stored-requester';
import { ExportJobs, isOwner, type ExportJob } from '../export/jobs';
import { readExportParameters, type ExportParameters } from '../export/kickoff';
import { ExportWorker, type ExportWorkerOptions } from '../export/worker';
import { throttledPoll } from '../jobs/poll-throttle';
import { requireEnvelope } from '../rest/envelope';
import type { OperationHandler, ServerContext } from '../rest/context';
import { NOTHING } from '../search/compile/element';

const BULK = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition';
const NDJSON = 'application/fhir+ndjson';
const PATIENT_MEMBER = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/;

const isParametersBody = (body: unknown): boolean =>
  typeof body === 'object' && body !== null && !Array.isArray(body) && !(body instanceof URLSearchParams);

const hasPreference = (request: FhirRequest, preference: string): boolean =>
  (request.headers.prefer ?? '')
    .split(/[,;]/)
    .map((p) => p.trim().toLowerCase())
    .includes(preference);

function jobIdOf(request: FhirRequest): string {
  const id = queryValue(request, '_jobId');
  if (!id || !/^[0-9a-f-]{36}$/.test(id)) throw badRequest('_jobId must name an export job', '_jobId');
  return id;
}

/** The status and file URLs of a job (Content-Location and the manifest's `url`s). */
export function statusUrl(baseUrl: string, id: string): string {
  return `${baseUrl}/$export-poll-status?_jobId=${id}`;
}
const fileUrl = (job: ExportJob, file: number | 'errors') =>
  `${job.baseUrl}/$export-file?_jobId=${job._id}&file=${file}`;

/**
 * Bulk Data Access 2.0 ($export at system, Patient and Group level; issue 13). The kick-off checks
 * and stores a job with what rebuilding the requester's access decision needs, and answers 202 with
 * the status URL; an ExportWorker in whichever process claims the job writes the NDJSON files into the
 * database; status and files are answered by any process, to the requester who started the job only.
 */
export function registerExport(context: ServerContext, options: ExportWorkerOptions = {}): ExportWorker {
  const jobs = new ExportJobs(context.store.db);
  const files = new ExportFiles(context.store.db);
  const worker = new ExportWorker(context, jobs, files, options);

  /** The export's job as its requester may see it; another requester's, or one gone, is not found. */
  const jobFor = async (request: FhirRequest): Promise<ExportJob> => {
    const job = await jobs.get(jobIdOf(request));
    const policy = await policyOf(request, context);
    const live = job && job.state !== 'cancelled' && !(job.expiresAt && job.expiresAt <= new Date());
    if (!job || !live || !isOwner(job, policy.requester)) {
      throw notFound('No export with this _jobId is known to this requester (it may have expired)', '_jobId');
    }
    return job;
  };

  const kickOff: OperationHandler = {
    name: 'export',
    levels: ['system', 'type', 'instance'],
    resourceTypes: ['Patient', 'Group'],
    affectsState: false,
    requires: { permissions: ['r', 's'] },
    definition: `${BULK}/export`,
    definitionFor: (type) =>
      type === 'Patient' ? `${BULK}/patient-export` : type === 'Group' ? `${BULK}/group-export` : `${BULK}/export`,
    async handle(request, ctx, target) {
      const level = target.level === 'system' ? 'system' : target.resourceType === 'Patient' ? 'patient' : 'group';
      if (level === 'group' && target.level !== 'instance') {
        throw new FhirError(
          404,
          outcome([
            issue(
              'error',
              'not-supported',
              'Export runs at system level, on Patient (or one), and on a Group instance',
            ),
          ]),
        );
      }
      if (!hasPreference(request, 'respond-async')) {
        throw badRequest('$export runs asynchronously: send Prefer: respond-async');
      }
      if (request.method === 'POST' && request.body !== undefined) {
        if (!isParametersBody(request.body)) throw badRequest('A POST kick-off carries a Parameters resource');
        requireEnvelope(ctx, request.body, 'Parameters');
      }
      const params = readExportParameters(request, hasPreference(request, 'handling=lenient'));
      const policy = await policyOf(request, ctx);
      const types = await exportTypes(ctx, level, params);
      const warnings = [...params.warnings];
      for (const type of params.types ?? []) {
        if (policy.filter(type, ['r', 's']) === NOTHING) {
          warnings.push(`The token's scopes do not grant reading ${type}: none are exported`);
        }
      }
      await checkTypeFilters(ctx, request, params, types);
      if (level === 'system' && params.patients)
        throw badRequest('patient applies to Patient and Group exports', 'patient');
      const patients =
        level === 'group'
          ? await groupMembers(ctx, request, target.id as string, params)
          : target.id
            ? await onePatient(ctx, request, target.id, params)
            : params.patients;
      const now = new Date();
      const job: ExportJob = {
        _id: randomUUID(),
        requester: storeRequester(policy.requester),
        request: `${request.baseUrl}/${request.path}${request.query.length ? `?${new URLSearchParams(request.query)}` : ''}`,
        baseUrl: request.baseUrl,
        level,
        types,
        ...(params.since ? { since: params.since } : {}),
        typeFilters: params.typeFilters,
        ...(params.elements ? { elements: params.elements } : {}),
        ...(patients ? { patients } : {}),
        warnings,
        state: 'accepted',
        runner: null,
        transactionTime: now,
        cursor: null,
        done: 0,
        output: [],
        createdAt: now,
        updatedAt: now,
      };
      await jobs.create(job);
      worker.wake();
      return {
        status: 202,
        headers: { contentLocation: statusUrl(request.baseUrl, job._id) },
        body: outcome([issue('information', 'informational', `Export ${job._id} accepted; poll its Content-Location`)]),
      };
    },
  };

  const status: OperationHandler = {
    name: 'export-poll-status',
    levels: ['system'],
    affectsState: false,
    acceptsDelete: true,
    unlisted: true,
    requires: { permissions: ['r', 's'] },
    definition: `${BULK}/export`,
    async handle(request, ctx) {
      const job = await jobFor(request);
      if (request.method === 'DELETE') {
        await jobs.cancel(job._id);
        await files.removeJob(job._id);
        return { status: 202, headers: {}, body: outcome([issue('information', 'informational', 'Export deleted')]) };
      }
      const retryAfter = ctx.config.exportPollSeconds;
      if (job.state === 'accepted' || job.state === 'in-progress') {
        const throttled = await throttledPoll(jobs, job, retryAfter, ctx.config.clockSkewMs);
        if (throttled) return throttled;
        return { status: 202, headers: { retryAfter, progress: progressOf(job) }, body: progressOutcome(job) };
      }
      if (job.state === 'failed') {
        throw new FhirError(500, outcome([issue('error', 'exception', job.failure ?? 'The export failed')]));
      }
      return {
        status: 200,
        headers: { expires: (job.expiresAt as Date).toUTCString() },
        stream: textStream('application/json', JSON.stringify(manifestOf(job))),
      };
    },
  };

  const download: OperationHandler = {
    name: 'export-file',
    levels: ['system'],
    affectsState: false,
    unlisted: true,
    requires: { permissions: ['r', 's'] },
    definition: `${BULK}/export`,
    async handle(request) {
      const job = await jobFor(request);
      const which = queryValue(request, 'file');
      const missing = () => notFound('This export has no such file', 'file');
      if (job.state !== 'completed') throw missing();
      if (which === 'errors') {
        if (!job.warnings.length) throw missing();
        return {
          status: 200,
          headers: {},
          stream: textStream(NDJSON, `${JSON.stringify(warningsOf(job))}\n`),
        };
      }
      const file = job.output.find((f) => String(f.file) === which);
      if (!file) throw missing();
      return {
        status: 200,
        headers: {},
        stream: { contentType: NDJSON, chunks: files.read(job._id, file.file, file.chunks) },
      };
    },
  };

  context.operations.push(kickOff, status, download);
  return worker;
}

/** The types an export covers: those asked for, or every stored type (Patient-level: of the Patient compartment). */
async function exportTypes(
  context: ServerContext,
  level: ExportJob['level'],
  params: ExportParameters,
): Promise<string[]> {
  const patientTypes = (type: string) => type === 'Patient' || inPatientCompartment(type);
  if (params.types) {
    const outside = params.types.find((t) => level !== 'system' && !patientTypes(t));
    if (outside)
      throw badRequest(`${outside} is not in the Patient compartment: a ${level}-level export has none`, '_type');
    return params.types;
  }
  const stored = await context.store.db.listCollections({}, { nameOnly: true }).toArray();
  return stored
    .map((c) => c.name)
    .filter((name) => isResourceType(name) && (level === 'system' || patientTypes(name)))
    .sort();
}

/** Each `_typeFilter` is compiled now, so that a query the search engine refuses is this request's 400. */
async function checkTypeFilters(
  context: ServerContext,
  request: FhirRequest,
  params: ExportParameters,
  types: string[],
): Promise<void> {
  for (const filter of params.typeFilters) {
    if (!types.includes(filter.type)) {
      throw badRequest(`_typeFilter names ${filter.type}, which this export does not include`, '_typeFilter');
    }
    if (!context.compileQuery) throw new Error('_typeFilter needs the search module');
    try {
      await context.compileQuery(filter.type, [...new URLSearchParams(filter.query).entries()], request.baseUrl);
    } catch (error) {
      if (!(error instanceof FhirError)) throw error;
      const text = error.outcome.issue?.[0]?.details?.text ?? 'it cannot be searched';
      throw badRequest(`_typeFilter ${filter.type}?${filter.query}: ${text}`, '_typeFilter');
    }
  }
}

/** Patient/[id]/$export (HAPI's instance level): that patient's compartment, if the requester may read the patient. */
async function onePatient(
  context: ServerContext,
  request: FhirRequest,
  id: string,
  params: ExportParameters,
): Promise<string[]> {
  if (params.patients) throw badRequest('patient does not apply to Patient/[id]/$export', 'patient');
  const current = await context.store.read('Patient', id, request.reads);
  if (!current) throw notFound(`Patient/${id} is not known`, 'Patient.id');
  if (current.deleted) throw gone(`Patient/${id} has been deleted`, 'Patient.id');
  return [id];
}

/** The Group's active Patient members the requester may read the Group for (those of `patient` only, if given). */
async function groupMembers(
  context: ServerContext,
  request: FhirRequest,
  id: string,
  params: ExportParameters,
): Promise<string[]> {
  const current = await context.store.read('Group', id, request.reads);
  if (!current) throw notFound(`Group/${id} is not known`, 'Group.id');
  if (current.deleted) throw gone(`Group/${id} has been deleted`, 'Group.id');
  const members = new Set<string>();
  for (const member of (current.resource as Group).member ?? []) {
    const match = member.inactive ? null : PATIENT_MEMBER.exec(member.entity?.reference ?? '');
    if (match) members.add(match[1]);
  }
  return params.patients ? params.patients.filter((p) => members.has(p)) : [...members];
}

function progressOf(job: ExportJob): string {
  if (job.state === 'accepted' || !job.cursor) return 'accepted, not started';
  const type = job.types[job.cursor.typeIndex];
  const position = type ? `; ${type}, type ${job.cursor.typeIndex + 1} of ${job.types.length}` : '';
  return `${job.done} resources exported${position}`;
}

function progressOutcome(job: ExportJob): OperationOutcome {
  return outcome([issue('information', 'informational', `Export ${job.state}: ${progressOf(job)}`)]);
}

function warningsOf(job: ExportJob): OperationOutcome {
  return outcome(job.warnings.map((text) => issue('warning', 'not-supported', text)));
}

/** The complete-status body (Bulk Data 2.0, "Response - Complete Status"). */
function manifestOf(job: ExportJob) {
  return {
    transactionTime: job.transactionTime.toISOString(),
    request: job.request,
    requiresAccessToken: true,
    output: job.output.map((f) => ({ type: f.type, url: fileUrl(job, f.file), count: f.count })),
    error: job.warnings.length ? [{ type: 'OperationOutcome', url: fileUrl(job, 'errors') }] : [],
  };
}
