import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Group, Measure, OperationOutcome, Resource } from '@medplum/fhirtypes';
import { policyOf } from '../auth/access-control';
import { restoreRequester, storeRequester } from '../auth/stored-requester';
import { findRepoDir } from '../checks/classes';
import { badRequest, FhirError, gone, issue, notFound, outcome } from '../fhir/outcome';
import { queryValue, type FhirRequest, type FhirResponse } from '../fhir/request';
import { JobWorker, type JobWorkerOptions, type RunResult } from '../jobs/job-worker';
import type { JobRunner } from '../jobs/job-store';
import { isOwner } from '../jobs/owner';
import { throttledPoll } from '../jobs/poll-throttle';
import { compileMeasure, MeasureDefinitionError, type CompiledMeasure } from '../measures/definition';
import { dryRun, MeasureEvaluationError } from '../measures/evaluate';
import { MeasureJobs, type MeasureJob } from '../measures/jobs';
import { readEvaluateRequest, type EvaluateRequest } from '../measures/params';
import { evaluatePopulation, type Checkpoint } from '../measures/population';
import { measureReport } from '../measures/report';
import { emptyTally } from '../measures/tally';
import { parsePrefer } from '../rest/headers';
import { requireEnvelope } from '../rest/envelope';
import type { Interceptor, OperationHandler, ServerContext } from '../rest/context';
import { readRestriction } from '../rest/router';
import type { CurrentDocument } from '../store/documents';
import type { Reader } from '../store/read-view';
import { publishShipped } from './publish';
import type { ReviewDefinitions } from './review/definitions';

/** The operation of R4 (Measure-evaluate-measure). */
export const EVALUATE_MEASURE_DEFINITION = 'http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure';
/** The status URL of an asynchronous evaluation: `[base]/$evaluate-measure-status?_jobId=…`. */
export const STATUS_OPERATION = 'evaluate-measure-status';
const PATIENT_MEMBER = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/;

/** The Measures and their ValueSets shipped in measures/, stored at start-up. */
export function shippedMeasures(dir = findRepoDir('measures')): Resource[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Resource);
}

export function statusUrl(baseUrl: string, id: string): string {
  return `${baseUrl}/$${STATUS_OPERATION}?_jobId=${id}`;
}

/** Compiled Measures by id and version: a stored Measure is compiled once per version. */
class MeasureCache {
  private readonly compiled = new Map<string, CompiledMeasure>();

  get(doc: CurrentDocument): CompiledMeasure {
    const key = `${doc._id}/${doc.v}`;
    let m = this.compiled.get(key);
    if (!m) {
      try {
        m = compileMeasure(doc.resource as Measure);
      } catch (e) {
        // Stored before the check existed or by another tool: the Measure, not the request, is at fault.
        if (e instanceof MeasureDefinitionError) throw new FhirError(422, outcome(e.issues));
        throw e;
      }
      if (this.compiled.size > 200) this.compiled.clear();
      this.compiled.set(key, m);
    }
    return m;
  }
}

export interface MeasuresModule {
  worker: JobWorker<MeasureJob>;
  /** Called after every batch an asynchronous job records (tests stop the server there). */
  afterBatch?: (job: MeasureJob, checkpoint: Checkpoint) => void | Promise<void>;
}

/**
 * Population reports (issue 13): Measures with FHIRPath criteria, evaluated per patient by the checks
 * engine, over the patients the requester may see (the same access decision as a search: an analyst
 * without Part 2 clearance counts no Part 2 data). `Prefer: respond-async` runs the evaluation as a
 * background job (src/jobs), resumable after a restart from its last recorded batch.
 */
export async function registerMeasures(
  context: ServerContext,
  definitions: ReviewDefinitions,
  options: JobWorkerOptions = {},
): Promise<MeasuresModule> {
  const cache = new MeasureCache();
  const jobs = new MeasureJobs(context.store.db);
  const retention = () => new Date(Date.now() + context.config.exportRetentionSeconds * 1000);

  const interceptor: Interceptor = {
    name: 'measures',
    checkWrite: (resource) => {
      if (resource.resourceType !== 'Measure') return [];
      try {
        // A dry run on a patient without data catches what compiling cannot: unknown functions and classes.
        dryRun(compileMeasure(resource), definitions.classes);
        return [];
      } catch (e) {
        if (e instanceof MeasureDefinitionError) return e.issues;
        if (e instanceof MeasureEvaluationError) {
          return [issue('error', 'business-rule', `Fails on a patient without data: ${e.message}`, 'Measure.group')];
        }
        return [issue('error', 'structure', `Not usable by $evaluate-measure: ${(e as Error).message}`, 'Measure')];
      }
    },
  };
  context.interceptors.push(interceptor);

  const module: MeasuresModule = {
    worker: new JobWorker<MeasureJob>(
      context.store,
      context.logger,
      jobs,
      {
        name: 'measure',
        run: (job, runner, stopping) => runJob(job, runner, stopping),
        failed: (_job, error) => ({
          state: 'failed',
          failure:
            error instanceof FhirError || error instanceof MeasureEvaluationError
              ? `The Measure cannot be evaluated: ${error.message}`
              : 'The evaluation failed on the server; start it again',
          failureStatus:
            error instanceof FhirError ? error.status : error instanceof MeasureEvaluationError ? 422 : 500,
          expiresAt: retention(),
        }),
      },
      options,
    ),
  };

  async function runJob(job: MeasureJob, runner: JobRunner, stopping: () => boolean): Promise<RunResult> {
    const policy = await context.access.policyFor(restoreRequester(job.requester));
    const view = context.store.readView(readRestriction(policy));
    const doc = await context.store.read('Measure', job.measureId);
    if (!doc || doc.deleted || String(doc.v) !== job.measureVersion) {
      throw new FhirError(409, outcome([issue('error', 'conflict', 'The Measure changed during the evaluation')]));
    }
    const measure = cache.get(doc);
    const start = job.checkpoint ?? {
      after: null,
      tally: emptyTally(measure.groups.length, job.request.reportType === 'subject-list'),
    };
    let outcome_: RunResult | undefined;
    const { checkpoint, finished } = await evaluatePopulation(
      view,
      {
        measure,
        period: job.request.period,
        classes: definitions.classes,
        patients: job.patients,
        practitioner: job.request.practitioner,
        concurrency: context.config.measureConcurrency,
      },
      start,
      async (cp) => {
        if (!(await jobs.update(job._id, runner, { checkpoint: cp }))) {
          outcome_ = 'lost';
          return false;
        }
        await module.afterBatch?.(job, cp);
        if (stopping()) {
          outcome_ = 'stopped';
          return false;
        }
        return true;
      },
    );
    if (!finished) return outcome_ ?? 'stopped';
    const report = measureReport(measure, checkpoint.tally, job.request, new Date());
    const done = await jobs.update(job._id, runner, {
      state: 'completed',
      report,
      checkpoint: null,
      expiresAt: retention(),
      runner: null,
    });
    return done ? 'completed' : 'lost';
  }

  const evaluate: OperationHandler = {
    name: 'evaluate-measure',
    levels: ['type', 'instance'],
    resourceTypes: ['Measure'],
    affectsState: false,
    spansCommits: true,
    requires: { permissions: ['r'] },
    definition: EVALUATE_MEASURE_DEFINITION,
    async handle(request, ctx, target): Promise<FhirResponse> {
      const params = readEvaluateRequest(request, target.level === 'type');
      if (request.body !== undefined && !(request.body instanceof URLSearchParams)) {
        requireEnvelope(ctx, request.body, 'Parameters');
      }
      const reads: Reader = request.reads ?? ctx.store.directReader();
      const doc = await measureDocument(ctx, reads, params, target.id);
      const measure = cache.get(doc);
      const policy = await policyOf(request, ctx);
      const patients = params.subject ? await subjectPatients(ctx, request, params.subject) : undefined;
      if (parsePrefer(request.headers.prefer).respondAsync) {
        const view = ctx.store.readView(readRestriction(policy));
        const now = new Date();
        const job: MeasureJob = {
          _id: randomUUID(),
          state: 'accepted',
          runner: null,
          createdAt: now,
          updatedAt: now,
          requester: storeRequester(policy.requester),
          measureId: doc._id,
          measureVersion: String(doc.v),
          request: {
            period: params.period,
            reportType: params.reportType,
            ...(params.subject ? { subject: params.subject } : {}),
            ...(params.practitioner ? { practitioner: params.practitioner } : {}),
          },
          ...(patients ? { patients } : {}),
          total: await view.count<CurrentDocument>('Patient', {
            deleted: { $ne: true },
            ...(patients ? { _id: { $in: patients } } : {}),
          }),
          checkpoint: null,
        };
        await jobs.create(job);
        module.worker.wake();
        return {
          status: 202,
          headers: { contentLocation: statusUrl(request.baseUrl, job._id) },
          body: outcome([
            issue('information', 'informational', `Evaluation ${job._id} accepted; poll its Content-Location`),
          ]),
        };
      }
      const view = ctx.store.readView(readRestriction(policy));
      const { checkpoint } = await evaluatePopulation(
        view,
        {
          measure,
          period: params.period,
          classes: definitions.classes,
          patients,
          practitioner: params.practitioner,
          concurrency: ctx.config.measureConcurrency,
        },
        { after: null, tally: emptyTally(measure.groups.length, params.reportType === 'subject-list') },
      ).catch((e: unknown) => {
        if (e instanceof MeasureEvaluationError) throw evaluationFailed(e);
        throw e;
      });
      return { status: 200, headers: {}, body: measureReport(measure, checkpoint.tally, params, new Date()) };
    },
  };

  /** The job as its requester may see it; another requester's, or one gone, is not found. */
  const jobFor = async (request: FhirRequest): Promise<MeasureJob> => {
    const id = queryValue(request, '_jobId');
    if (!id || !/^[0-9a-f-]{36}$/.test(id)) throw badRequest('_jobId must name an evaluation', '_jobId');
    const job = await jobs.get(id);
    const policy = await policyOf(request, context);
    const live = job && job.state !== 'cancelled' && !(job.expiresAt && job.expiresAt <= new Date());
    if (!job || !live || !isOwner(job, policy.requester)) {
      throw notFound('No evaluation with this _jobId is known to this requester (it may have expired)', '_jobId');
    }
    return job;
  };

  const status: OperationHandler = {
    name: STATUS_OPERATION,
    levels: ['system'],
    affectsState: false,
    acceptsDelete: true,
    unlisted: true,
    requires: { permissions: ['r'] },
    definition: EVALUATE_MEASURE_DEFINITION,
    async handle(request, ctx) {
      const job = await jobFor(request);
      if (request.method === 'DELETE') {
        await jobs.cancel(job._id);
        return {
          status: 202,
          headers: {},
          body: outcome([issue('information', 'informational', 'Evaluation cancelled')]),
        };
      }
      if (job.state === 'accepted' || job.state === 'in-progress') {
        const retryAfter = ctx.config.exportPollSeconds;
        const throttled = await throttledPoll(jobs, job, retryAfter, ctx.config.clockSkewMs);
        if (throttled) return throttled;
        const progress = `${job.checkpoint?.tally.evaluated ?? 0} of ${job.total} patients evaluated`;
        return {
          status: 202,
          headers: { retryAfter, progress },
          body: progressOutcome(job, progress),
        };
      }
      if (job.state === 'failed') {
        const failed = job.failureStatus ?? 500;
        const code = failed === 409 ? 'conflict' : failed < 500 ? 'processing' : 'exception';
        throw new FhirError(failed, outcome([issue('error', code, job.failure ?? 'The evaluation failed')]));
      }
      return { status: 200, headers: { expires: (job.expiresAt as Date).toUTCString() }, body: job.report };
    },
  };

  context.operations.push(evaluate, status);
  const shipped = shippedMeasures();
  for (const resource of shipped) {
    if (resource.resourceType !== 'Measure') continue;
    try {
      compileMeasure(resource);
    } catch (e) {
      throw new Error(`measures/${resource.id ?? '?'}: ${(e as Error).message}`);
    }
  }
  await publishShipped(context, shipped);
  return module;
}

function progressOutcome(job: MeasureJob, progress: string): OperationOutcome {
  return outcome([issue('information', 'informational', `Evaluation ${job.state}: ${progress}`)]);
}

/** The Measure of the request: the instance, or the one whose canonical url (`|version`) is `measure`. */
async function measureDocument(
  context: ServerContext,
  reads: Reader,
  params: EvaluateRequest,
  id: string | undefined,
): Promise<CurrentDocument> {
  if (id) {
    const current = await context.store.read('Measure', id, reads);
    if (!current) throw notFound(`Measure/${id} is not known`, 'Measure.id');
    if (current.deleted) throw gone(`Measure/${id} has been deleted`, 'Measure.id');
    return current;
  }
  const [url, version] = (params.measure as string).split('|');
  const filter: Record<string, unknown> = { 'resource.url': url, deleted: { $ne: true } };
  if (version) filter['resource.version'] = version;
  const docs = await reads.find<CurrentDocument>('Measure', filter, { limit: 20 });
  if (!docs.length) throw notFound(`No Measure has the url ${params.measure?.slice(0, 200)}`, 'measure');
  // Several Measures under one url (and no version asked for): the one updated last.
  docs.sort((a, b) =>
    String(b.resource.meta?.lastUpdated ?? '').localeCompare(String(a.resource.meta?.lastUpdated ?? '')),
  );
  return docs[0];
}

/** The patients of a Patient or Group subject, as the requester may read them. */
async function subjectPatients(context: ServerContext, request: FhirRequest, subject: string): Promise<string[]> {
  const [type, id] = subject.split('/');
  const current = await context.store.read(type, id, request.reads);
  if (!current) throw notFound(`${subject} is not known`, 'subject');
  if (current.deleted) throw gone(`${subject} has been deleted`, 'subject');
  if (type === 'Patient') return [id];
  const members = new Set<string>();
  for (const member of (current.resource as Group).member ?? []) {
    const match = member.inactive ? null : PATIENT_MEMBER.exec(member.entity?.reference ?? '');
    if (match) members.add(match[1]);
  }
  return [...members].sort();
}

/**
 * A criterion that throws on some patient's data is a defect of the Measure (usually one stored at
 * runtime whose expression fails on data it was not tried on): 422 naming the criterion, never a
 * partial report.
 */
function evaluationFailed(e: MeasureEvaluationError): FhirError {
  return new FhirError(422, outcome([issue('error', 'processing', `The Measure cannot be evaluated: ${e.message}`)]));
}
