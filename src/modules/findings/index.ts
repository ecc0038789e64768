import type { ServerContext } from '../../rest/context';
import { WorkQueue } from '../../store/work-queue';
import type { ReviewDefinitions } from '../review/definitions';
import { FindingsClock } from './clock';
import { evaluatePatients } from './evaluate';
import { patientsToSweep } from './patients';
import { reconcile } from './reconcile';
import { DailySweep } from './sweep';
import { testClockOperation } from './test-clock';
import { findingsTrigger } from './triggers';
import { FindingsWorker } from './worker';
import { recancelMitigatedFindings } from './recancel';
import { writePatientsFindings } from './writer';

/** The durable queue of patients whose findings must be evaluated, one entry per patient. */
export const FINDINGS_QUEUE = '_findings_queue';
/** A claimed patient is this process's for this long; a longer evaluation is taken up by another. */
const LEASE_MS = 60_000;
/**
 * Most patients a worker evaluates together: one query per type and one commit for the batch. As many
 * as a view's adherence batch; a batch's Bundle stays a few dozen entries.
 */
const BATCH_SIZE = 25;
/** How often each process checks whether today's sweep is due. */
const SWEEP_CHECK_MS = 30_000;

export interface Findings {
  queue: WorkQueue;
  clock: FindingsClock;
  sweep: DailySweep;
  worker?: FindingsWorker;
  /** Finding versions this process wrote (through the ordinary commit path). */
  written(): number;
  /** Starts the workers and the sweep timer (once the pipeline is assembled). */
  start(): void;
  /** The one-off pass over findings closed as `mitigated` by earlier versions, once started (recancel.ts). */
  recancelled?: Promise<number>;
  stop(): Promise<void>;
}

/**
 * Standing findings (issue 12): the review `$medication-review` runs, kept current for every patient
 * as DetectedIssue and Task resources. A write that can change a patient's findings queues the patient
 * in its own commit (triggers.ts); workers in every process claim queued patients with leases,
 * evaluate them as of today (evaluate.ts), and store what changed (reconcile.ts, writer.ts); a daily
 * sweep queues every patient with active medications (sweep.ts).
 */
export async function registerFindings(context: ServerContext, definitions: ReviewDefinitions): Promise<Findings> {
  const { config, store, logger } = context;
  const settings = config.findings;
  const queue = new WorkQueue(store.db, FINDINGS_QUEUE);
  await queue.ensureIndexes();
  const clock = new FindingsClock(store.db, settings.timeZone, settings.clock === 'test');
  await clock.refresh();
  const sweep = new DailySweep(store.db, queue, clock, settings.sweepTime, config.serverId, logger);
  let written = 0;

  const worker =
    settings.workers > 0
      ? new FindingsWorker(queue, {
          owner: `${store.processes.serverId}/${store.processes.incarnation}`,
          concurrency: settings.workers,
          pollMs: settings.pollMs,
          leaseMs: LEASE_MS,
          logger,
          allPatients: () => patientsToSweep(store.db),
          batchSize: BATCH_SIZE,
          async evaluate(patientIds) {
            await clock.refresh();
            const { states, failed } = await evaluatePatients(
              store.directReader(),
              definitions,
              patientIds,
              clock.today(),
            );
            const batch = states.map((state) => ({ patientId: state.patientId, writes: reconcile(state) }));
            const unwritten = await writePatientsFindings(context, batch);
            for (const { patientId, writes } of batch) if (!unwritten.has(patientId)) written += writes.length;
            return new Map([...failed, ...unwritten]);
          },
        })
      : undefined;

  const trigger = findingsTrigger(queue, definitions, settings.delayMs);
  let queuedSinceNudge = false;
  context.interceptors.push({
    name: trigger.name,
    commitDocuments(request, staged) {
      const entries = trigger.commitDocuments?.(request, staged) ?? [];
      if (entries.length) queuedSinceNudge = true;
      return entries;
    },
    afterCommit() {
      if (!queuedSinceNudge) return;
      queuedSinceNudge = false;
      // The entries this commit queued are due after the delay: look then rather than at the next poll.
      worker?.nudge(settings.delayMs + 10);
    },
  });
  if (settings.clock === 'test') {
    context.operations.push(
      testClockOperation(clock, async () => {
        const swept = await sweep.tick();
        worker?.nudge();
        return { swept, queued: await queue.size() };
      }),
    );
  }
  context.readiness.push(async () => ({ findingsQueue: await queue.size() }));

  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> = Promise.resolve();
  const checkSweep = () => {
    sweeping = sweep
      .tick()
      .then((swept) => swept && worker?.nudge())
      .catch((error: unknown) => logger.error({ err: error }, 'daily findings sweep failed'));
  };
  const findings: Findings = {
    queue,
    clock,
    sweep,
    worker,
    written: () => written,
    start() {
      findings.recancelled = recancelMitigatedFindings(context, logger).catch((error: unknown) => {
        logger.error({ err: error }, 'findings closed as mitigated could not be re-closed');
        return 0;
      });
      worker?.start();
      checkSweep();
      sweepTimer = setInterval(checkSweep, SWEEP_CHECK_MS);
      sweepTimer.unref();
    },
    async stop() {
      if (sweepTimer) clearInterval(sweepTimer);
      await sweeping;
      await findings.recancelled;
      await worker?.stop();
    },
  };
  return findings;
}
