import './fhir/string-prototype';
import type { Logger } from 'pino';
import { createAccessControl } from './auth/access-control';
import type { ServerConfig } from './config';
import { connectDatabase, DatabaseConnection } from './db/connection';
import { compartmentsOf } from './fhir/compartments';
import { sharedPageTokens } from './fhir/page-token';
import type { ServerContext } from './rest/context';
import { registerSearch, registerSearchIndexes } from './modules/search';
import { markWideDates } from './search/date-spans';
import { runIndexMigration } from './search/index-migration';
import { indexedTypes } from './search/indexes';
import { startDefinitionsFeed } from './modules/definitions-feed';
import type { AuditLog } from './audit/audit-log';
import { registerAudit } from './modules/audit';
import { registerMedicationReview } from './modules/medication-review';
import { registerExport } from './modules/export';
import type { ExportWorker } from './export/worker';
import { ExportFiles } from './export/files';
import { registerFindings, type Findings } from './modules/findings';
import { registerSubscriptions, type SubscriptionsModule } from './modules/subscriptions';
import { registerValidation } from './modules/validation';
import { registerViews } from './modules/views';
import { registerMeasures, type MeasuresModule } from './modules/measures';
import { extractSearchIndex, SearchParameterRegistry } from './search';
import { backfillHistoryCompartments } from './store/history-compartments';
import { ResourceStore, type StoreIndexer } from './store/resource-store';
import { createValidator } from './validation';

/** The medication-management types whose collections and indexes exist from the first start. */
export const MEDICATION_SET = [
  'Patient',
  'Practitioner',
  'Organization',
  'Medication',
  'MedicationRequest',
  'MedicationDispense',
  'MedicationStatement',
  'MedicationAdministration',
  'Observation',
  'CarePlan',
  'Encounter',
  'Appointment',
  'DetectedIssue',
  'Task',
  'Provenance',
  'AuditEvent',
  // What access decisions look up on every request of a practitioner (care teams, consents).
  'CareTeam',
  'Consent',
  'RelatedPerson',
  'StructureDefinition',
  'ValueSet',
  'CodeSystem',
  'SearchParameter',
  'PlanDefinition',
  'Measure',
  'MeasureReport',
  'ViewDefinition',
];

export interface RunningContext {
  context: ServerContext;
  connection: DatabaseConnection;
  /** The audit trail's queue (tests and shutdown flush it). */
  audit: AuditLog;
  /** Runs the Bulk Data export jobs of this process. */
  exports: ExportWorker;
  /** Population reports: the worker of asynchronous $evaluate-measure jobs. */
  measures: MeasuresModule;
  /** Standing findings (FINDINGS=on): their queue, clock and workers. */
  findings?: Findings;
  /** Subscription delivery state and workers. */
  subscriptions: SubscriptionsModule;
  /** Stores the audit events still waiting, stops background work and closes the database connection. */
  close(): Promise<void>;
}

/** What searches and compartment look-ups match on, computed once when a version is written. */
export function resourceIndexer(searchParameters: SearchParameterRegistry, maxIndexValues = Infinity): StoreIndexer {
  return (resource, purpose = 'write') => ({
    compartments: compartmentsOf(resource),
    // A version being rebuilt from history was accepted once: it is indexed whatever the limit is now.
    sp: extractSearchIndex(resource, searchParameters, purpose === 'write' ? maxIndexValues : Infinity),
  });
}

/**
 * Connects to the database, prepares storage (indexes, recovery of interrupted commits) and assembles
 * the pipeline. Modules that plug into the pipeline (validation, search, checks) register here.
 */
export async function createServerContext(config: ServerConfig, uri: string, logger: Logger): Promise<RunningContext> {
  const connection = await connectDatabase(uri, config.databaseName);
  const store = new ResourceStore(connection.db, {
    transactions: connection.supportsTransactions ? connection.client : undefined,
    serverId: config.serverId,
    leaseMs: config.journalLeaseMs,
    clockSkewMs: config.clockSkewMs,
    commitGroups: config.commitGroups,
    onBackgroundError: (error) => logger.error({ err: error }, 'process heartbeat failed'),
  });
  const searchParameters = new SearchParameterRegistry();
  store.setIndexer(resourceIndexer(searchParameters, config.maxIndexValues));
  registerSearchIndexes((type, indexes) => store.addIndexes(type, indexes));
  // Every index a search of the medication set is planned on is built now, before the first request,
  // with progress in the log (never on the query path; other paths are built in the background).
  await runIndexMigration(connection.db, MEDICATION_SET, logger);
  await markWideDates(connection.db, indexedTypes(), logger);
  await store.ensureIndexes(MEDICATION_SET);
  await store.start();
  // Before the first request: the unfinished commits of this server's previous run (same SERVER_ID)
  // and of processes whose heartbeat lapsed are finished or discarded now, whatever their age.
  const recovered = await store.journal.recover();
  if (recovered > 0) logger.warn({ recovered }, 'recovered interrupted commits');
  const sweep = setInterval(
    () => {
      Promise.all([store.journal.recover(), store.journal.forgetSettled(), store.processes.forgetDead()]).catch(
        (error: unknown) => logger.error({ err: error }, 'commit recovery sweep failed'),
      );
    },
    Math.max(500, Math.min(5000, config.journalLeaseMs / 2)),
  );
  sweep.unref();

  const access = await createAccessControl(config, () => context, connection.db);
  const context: ServerContext = {
    config,
    store,
    logger,
    access,
    interceptors: [],
    operations: [],
    capabilities: [],
    readiness: [],
    // One key for every server on the database, so a next link made by one is honoured by the others.
    pageTokens: await sharedPageTokens(connection.db, process.env.PAGE_TOKEN_SECRET),
    supportsTransactions: connection.supportsTransactions,
  };
  await registerValidation(context, createValidator({ requiredProfiles: config.requiredProfiles }));
  await registerSearch(context, searchParameters);
  // After validation: its interceptor runs first, so a check definition is checked only once it is valid R4.
  const definitions = await registerMedicationReview(context);
  const subscriptions = await registerSubscriptions(context);
  await registerViews(context, definitions);
  await new ExportFiles(connection.db).ensureIndexes();
  const exportWorker = registerExport(context);
  // After the review definitions: the Measures' ValueSets it stores reach the classes the criteria use.
  const measures = await registerMeasures(context, definitions);
  // Before the audit: a finding's writes pass every interceptor, the audit's last.
  const findings = config.findings.enabled ? await registerFindings(context, definitions) : undefined;
  // Last: it sees every other interceptor's refusals, and nothing runs after its own.
  const audit = registerAudit(context);
  // Definitions committed by other server processes (profiles, SearchParameters, checks) reach this one.
  const feed = startDefinitionsFeed(context);
  findings?.start();
  const backfill = backfillHistoryCompartments(connection.db, logger).catch((error: unknown) =>
    logger.error({ err: error }, 'giving history versions their compartments failed; restricted history omits them'),
  );
  exportWorker.start();
  measures.worker.start();
  return {
    context,
    connection,
    audit,
    exports: exportWorker,
    measures,
    findings,
    subscriptions,
    async close() {
      clearInterval(sweep);
      // The export and evaluation jobs running here stop after their chunk or batch, to be resumed by the next process.
      await Promise.all([exportWorker.close(), measures.worker.close()]);
      // Evaluations in flight finish (and audit) before the audit log closes.
      await findings?.stop();
      await subscriptions.stop();
      // The reads' batch still waiting is committed before the store stops.
      await audit.close();
      await feed.stop();
      await backfill;
      await store.stop();
      await connection.close();
    },
  };
}
