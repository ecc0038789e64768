import { availableParallelism, hostname } from 'node:os';
import type { AdmissionLimits } from './http/admission';

/** Server settings, all from the environment (README, "Configuration"), parsed once at start-up. */
export interface ServerConfig {
  port: number;
  host: string;
  /** MongoDB URI; undefined starts the embedded engine. */
  mongodbUri?: string;
  databaseName: string;
  dataDir: string;
  /** The embedded engine's binary (ENGINE_BINARY; default: the one npm run engine:build makes), for A/B benchmarks. */
  engineBinary?: string;
  /** Public base URL of the FHIR endpoint; default derived from each request's Host header. */
  publicBaseUrl?: string;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Most entries a batch or transaction Bundle may have. */
  maxBundleEntries: number;
  /**
   * BATCH_CONCURRENCY: how many independent entries of one batch Bundle run at a time (1: one after
   * another, as HAPI does). Entries naming one resource or condition, and reads after writes, keep
   * their order whatever it is.
   */
  batchConcurrency: number;
  /**
   * COMMIT_GROUPS: how many commits of this process run at once; commits that arrive meanwhile wait
   * and then go together as one (group commit). 0: every commit runs at once, alone.
   */
  commitGroups: number;
  /** Most resources one conditional delete may delete; more matches answer 412 (1: HAPI's default). */
  conditionalDeleteMax: number;
  defaultPageSize: number;
  maxPageSize: number;
  /**
   * REQUEST_TIME_BUDGET_MS: how long a read-only interaction (read, search, history, a review) may take
   * from its arrival, its wait for a turn included; past it, it is answered 503 `timeout` (its engine
   * query is left to finish). 0: no budget.
   */
  requestTimeBudgetMs: number;
  /** The requests one process works on at once, and the queue before them (src/http/admission.ts). */
  admission: AdmissionLimits;
  /**
   * A server process whose heartbeat is older than this is taken for dead, and its unfinished commits
   * are finished or discarded by another process. A live process's commits are never touched.
   */
  journalLeaseMs: number;
  /** Identifies this server across restarts: a restart recovers its own unfinished commits at once. */
  serverId: string;
  /** How far the clocks of the servers sharing one database may disagree (reads allow for it). */
  clockSkewMs: number;
  logLevel: string;
  /** Load examples/ into an empty database at start-up. */
  loadExamples: boolean;
  /** Profiles every resource of a type must conform to (REQUIRED_PROFILES="Type=url,Type=url"). */
  requiredProfiles: Record<string, string[]>;
  /** How deep objects and arrays may nest in a request body or a resource. */
  maxJsonDepth: number;
  /** Most items of one JSON array, or members of one object, in a resource (Bundle.entry: maxBundleEntries). */
  maxArrayLength: number;
  /** Longest JSON string, in characters, outside base64Binary `data` elements (those are bounded by the body). */
  maxStringLength: number;
  /** Most JSON values (objects, arrays, primitives) in one request body. */
  maxBodyElements: number;
  /** Most JSON values in one resource that is stored or read as an operation's input. */
  maxResourceElements: number;
  /** Most search index values one resource may have, over all its search parameters. */
  maxIndexValues: number;
  /** Most parameters in one search, conditional query or If-None-Exist. */
  maxSearchParameters: number;
  /** Longest value of one search parameter, in characters. */
  maxSearchValueLength: number;
  /** Most comma-separated values of one search parameter (`code=a,b,c`, `_sort`, `_elements`, `_type`). */
  maxSearchValues: number;
  /** Most chain and `_has` links in one search, over all its parameters (each runs an inner query). */
  maxSearchChains: number;
  /** Most `_include` and `_revinclude` parameters in one search. */
  maxSearchIncludes: number;
  /** Most operations in one JSON Patch or FHIRPath Patch. */
  maxPatchOperations: number;
  /** Longest FHIRPath expression a request may have evaluated (FHIRPath Patch paths, SearchParameter.expression). */
  maxFhirPathLength: number;
  /** Most resources in one Bulk Data export file; a type with more is split into several files. */
  exportFileMaxResources: number;
  /** How long the files of a finished export are kept (then the job and its files are deleted). */
  exportRetentionSeconds: number;
  /** Retry-After of an export still running; a client polling sooner is answered 429. */
  exportPollSeconds: number;
  /** Patients $evaluate-measure evaluates at once (their compartments are its memory). */
  measureConcurrency: number;
  auth: AuthConfig;
  /** Origins a browser may call the API from (CORS_ORIGINS, comma-separated); none by default. */
  corsOrigins: string[];
  /** NODE_ENV=production: links must come from PUBLIC_BASE_URL and development mode is refused. */
  production: boolean;
  /** Standing findings (README, "Standing findings"). */
  findings: FindingsConfig;
  subscriptions: SubscriptionConfig;
  /** The clinician page at /app/ (README, "Clinician page"). */
  app: ClinicianAppConfig;
}

/**
 * How the clinician page signs in as a SMART app (standalone launch, PKCE) where the server issues no
 * user tokens itself (AUTH_JWKS_URI, AUTH_HS256_SECRET): the identity provider's endpoints and the
 * client id registered with it. Development mode signs in with a practitioner picker instead.
 */
export interface ClinicianAppConfig {
  /** APP_AUTHORIZE_URL: the identity provider's authorization endpoint. */
  authorizeUrl?: string;
  /** APP_TOKEN_URL: its token endpoint (the page exchanges the code there, so CSP connect-src allows it). */
  tokenUrl?: string;
  /** APP_CLIENT_ID: the public client registered for the page (redirect URI: <origin>/app/). */
  clientId: string;
  /** APP_SCOPE: what the page asks for. */
  scope: string;
}

/** A clinician's scopes: read everything their care teams reach, acknowledge findings. */
export const CLINICIAN_SCOPE = 'openid fhirUser user/*.rs user/DetectedIssue.u user/Task.u';

function optionalUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${name} must be an absolute URL, got "${raw}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${name} must be an http(s) URL`);
  return url.toString();
}

function loadAppConfig(env: NodeJS.ProcessEnv): ClinicianAppConfig {
  return {
    authorizeUrl: optionalUrl(env, 'APP_AUTHORIZE_URL'),
    tokenUrl: optionalUrl(env, 'APP_TOKEN_URL'),
    clientId: env.APP_CLIENT_ID?.trim() || 'meds-fhir-clinician',
    scope: env.APP_SCOPE?.trim() || CLINICIAN_SCOPE,
  };
}

/** How standing findings are kept current (src/modules/findings). */
export interface FindingsConfig {
  /** FINDINGS=off: no queue, no evaluation, no sweep (findings are then only what $medication-review answers). */
  enabled: boolean;
  /** Batches of patients this process evaluates at once (FINDINGS_WORKERS); 0 queues but leaves the work to other processes. */
  workers: number;
  /** Local time of day (HH:MM, FINDINGS_SWEEP_TIME) from which the day's sweep runs. */
  sweepTime: string;
  /** IANA time zone (FINDINGS_TIME_ZONE) of "today" and of the sweep time. */
  timeZone: string;
  /** `test`: the clock can be moved by POST [base]/$test-clock (refused with NODE_ENV=production). */
  clock: 'system' | 'test';
  /** How long a queued patient waits before evaluation, so a burst of writes is evaluated once. */
  delayMs: number;
  /** How often an idle worker looks for queued patients written by other processes. */
  pollMs: number;
}

function loadFindingsConfig(env: NodeJS.ProcessEnv): FindingsConfig {
  const enabled = (env.FINDINGS ?? 'on').trim().toLowerCase();
  if (enabled !== 'on' && enabled !== 'off') throw new Error(`FINDINGS is "on" or "off", got "${env.FINDINGS}"`);
  const sweepTime = env.FINDINGS_SWEEP_TIME?.trim() || '02:00';
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(sweepTime)) {
    throw new Error(`FINDINGS_SWEEP_TIME is a time of day HH:MM, got "${sweepTime}"`);
  }
  const timeZone = env.FINDINGS_TIME_ZONE?.trim() || 'UTC';
  try {
    new Intl.DateTimeFormat('en-CA', { timeZone });
  } catch {
    throw new Error(`FINDINGS_TIME_ZONE is an IANA time zone (Europe/Paris, UTC), got "${timeZone}"`);
  }
  const clock = env.FINDINGS_CLOCK?.trim() || 'system';
  if (clock !== 'system' && clock !== 'test') throw new Error(`FINDINGS_CLOCK is "system" or "test", got "${clock}"`);
  return {
    enabled: enabled === 'on',
    workers: intFromEnv(env, 'FINDINGS_WORKERS', 2),
    sweepTime,
    timeZone,
    clock,
    delayMs: intFromEnv(env, 'FINDINGS_DELAY_MS', 200),
    pollMs: intFromEnv(env, 'FINDINGS_POLL_MS', 1000, 10),
  };
}

/** Topic-based subscriptions (README, "Subscriptions"). */
export interface SubscriptionConfig {
  /** Hosts rest-hook endpoints may be on (SUBSCRIPTION_ENDPOINT_HOSTS); outside production also localhost. */
  endpointHosts: string[];
  /** Failed attempts in a row after which a subscription is put in `error` (it keeps being probed). */
  maxAttempts: number;
  /** First retry delay; doubled per failed attempt up to retryMaxMs (the probe interval of a failing endpoint). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** How long one POST may take when the Subscription sets no backport-timeout. */
  timeoutMs: number;
  /** False: this process writes events but runs no delivery worker (SUBSCRIPTION_DELIVERY=off). */
  delivery: boolean;
  /** How often the workers look for work. */
  pollMs: number;
  /** How long delivered events stay replayable by $events. */
  eventRetentionMs: number;
}

function loadSubscriptionConfig(env: NodeJS.ProcessEnv): SubscriptionConfig {
  const delivery = (env.SUBSCRIPTION_DELIVERY ?? 'on').trim().toLowerCase();
  if (delivery !== 'on' && delivery !== 'off') {
    throw new Error(`SUBSCRIPTION_DELIVERY is "on" or "off", got "${env.SUBSCRIPTION_DELIVERY}"`);
  }
  return {
    endpointHosts: (env.SUBSCRIPTION_ENDPOINT_HOSTS ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
    maxAttempts: intFromEnv(env, 'SUBSCRIPTION_MAX_ATTEMPTS', 5, 1),
    retryBaseMs: intFromEnv(env, 'SUBSCRIPTION_RETRY_BASE_MS', 1000, 1),
    retryMaxMs: intFromEnv(env, 'SUBSCRIPTION_RETRY_MAX_MS', 60_000, 1),
    timeoutMs: intFromEnv(env, 'SUBSCRIPTION_TIMEOUT_MS', 10_000, 1),
    delivery: delivery === 'on',
    pollMs: intFromEnv(env, 'SUBSCRIPTION_POLL_MS', 250, 10),
    eventRetentionMs: intFromEnv(env, 'SUBSCRIPTION_EVENT_RETENTION_MS', 7 * 24 * 3600 * 1000, 1000),
  };
}

/**
 * How bearer tokens are verified (README, "Security"). `development`: nothing configured, so the
 * server signs with a secret of its own kept in DATA_DIR. `off` only when AUTH=off is set explicitly.
 */
export interface AuthConfig {
  mode: 'off' | 'hs256' | 'jwks' | 'development';
  hs256Secret?: string;
  jwksUri?: string;
  issuer?: string;
  audience?: string;
  /** Registered SMART Backend Services clients of the built-in token endpoint (POST /auth/token). */
  clientsFile?: string;
  /** Lifetime of the access tokens the token endpoint issues. */
  accessTokenSeconds: number;
}

function loadAuthConfig(env: NodeJS.ProcessEnv): AuthConfig {
  const switchedOff = env.AUTH?.trim().toLowerCase();
  if (switchedOff !== undefined && switchedOff !== '' && switchedOff !== 'off' && switchedOff !== 'on') {
    throw new Error(`AUTH is "off" to switch authorization off (or "on"), got "${env.AUTH}"`);
  }
  const common = {
    issuer: env.AUTH_ISSUER || undefined,
    audience: env.AUTH_AUDIENCE || undefined,
    clientsFile: env.AUTH_CLIENTS_FILE || undefined,
    accessTokenSeconds: intFromEnv(env, 'AUTH_ACCESS_TOKEN_SECONDS', 300, 10),
  };
  if (switchedOff === 'off') return { mode: 'off', ...common };
  if (env.AUTH_HS256_SECRET) {
    if (env.AUTH_HS256_SECRET.length < 32) throw new Error('AUTH_HS256_SECRET must be at least 32 characters');
    if (env.AUTH_JWKS_URI) throw new Error('Set AUTH_HS256_SECRET or AUTH_JWKS_URI, not both');
    return { mode: 'hs256', hs256Secret: env.AUTH_HS256_SECRET, ...common };
  }
  if (env.AUTH_JWKS_URI) {
    if (!common.issuer) throw new Error('AUTH_JWKS_URI needs AUTH_ISSUER (the issuer whose keys it serves)');
    return { mode: 'jwks', jwksUri: env.AUTH_JWKS_URI, ...common };
  }
  return { mode: 'development', ...common };
}

function parseRequiredProfiles(value: string | undefined): Record<string, string[]> {
  const map: Record<string, string[]> = {};
  for (const pair of (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [type, url] = pair.split('=');
    if (!type || !url) throw new Error(`REQUIRED_PROFILES entries are Type=canonical-url, got "${pair}"`);
    (map[type] ??= []).push(url);
  }
  return map;
}

/** An integer setting; `min` refuses values that would switch a feature off by accident (a limit of 0). */
function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be an integer of at least ${min}, got "${raw}"`);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  return {
    port: intFromEnv(env, 'PORT', 8080),
    host: env.HOST ?? '0.0.0.0',
    mongodbUri: env.MONGODB_URI || undefined,
    databaseName: env.MONGODB_DATABASE ?? 'meds_fhir',
    dataDir: env.DATA_DIR ?? './data',
    engineBinary: env.ENGINE_BINARY || undefined,
    publicBaseUrl: env.PUBLIC_BASE_URL?.replace(/\/$/, '') || undefined,
    maxBodyBytes: intFromEnv(env, 'MAX_BODY_BYTES', 10 * 1024 * 1024, 1),
    maxBundleEntries: intFromEnv(env, 'MAX_BUNDLE_ENTRIES', 1000, 1),
    batchConcurrency: intFromEnv(env, 'BATCH_CONCURRENCY', 8, 1),
    commitGroups: intFromEnv(env, 'COMMIT_GROUPS', 2, 0),
    conditionalDeleteMax: intFromEnv(env, 'CONDITIONAL_DELETE_MAX', 1, 1),
    defaultPageSize: intFromEnv(env, 'DEFAULT_PAGE_SIZE', 20, 1),
    maxPageSize: intFromEnv(env, 'MAX_PAGE_SIZE', 1000, 1),
    requestTimeBudgetMs: intFromEnv(env, 'REQUEST_TIME_BUDGET_MS', 1500),
    admission: {
      // Twice the cores: enough to keep the server's thread and the engine's busy together, few enough
      // that the requests running do not slow each other down past their time budget.
      maxInFlight: intFromEnv(env, 'MAX_REQUESTS_IN_FLIGHT', 2 * availableParallelism(), 1),
      maxQueued: intFromEnv(env, 'MAX_REQUESTS_QUEUED', 256, 1),
      maxQueueWaitMs: intFromEnv(env, 'MAX_QUEUE_WAIT_MS', 1000, 1),
    },
    journalLeaseMs: intFromEnv(env, 'JOURNAL_LEASE_MS', 10_000, 100),
    serverId: env.SERVER_ID || `${hostname()}:${env.PORT || 8080}`,
    clockSkewMs: intFromEnv(env, 'CLOCK_SKEW_MS', 250),
    logLevel: env.LOG_LEVEL ?? 'info',
    loadExamples: (env.LOAD_EXAMPLES ?? 'false') === 'true',
    requiredProfiles: parseRequiredProfiles(env.REQUIRED_PROFILES),
    auth: loadAuthConfig(env),
    corsOrigins: (env.CORS_ORIGINS ?? '')
      .split(',')
      .map((s) => s.trim().replace(/\/$/, ''))
      .filter(Boolean),
    production: env.NODE_ENV === 'production',
    findings: loadFindingsConfig(env),
    subscriptions: loadSubscriptionConfig(env),
    app: loadAppConfig(env),
    maxJsonDepth: intFromEnv(env, 'MAX_JSON_DEPTH', 64, 8),
    maxArrayLength: intFromEnv(env, 'MAX_ARRAY_LENGTH', 5_000, 1),
    maxStringLength: intFromEnv(env, 'MAX_STRING_LENGTH', 1024 * 1024, 1),
    maxBodyElements: intFromEnv(env, 'MAX_BODY_ELEMENTS', 1_000_000, 1),
    maxResourceElements: intFromEnv(env, 'MAX_RESOURCE_ELEMENTS', 50_000, 1),
    maxIndexValues: intFromEnv(env, 'MAX_INDEX_VALUES', 5_000, 1),
    maxSearchParameters: intFromEnv(env, 'MAX_SEARCH_PARAMETERS', 100, 1),
    maxSearchValueLength: intFromEnv(env, 'MAX_SEARCH_VALUE_LENGTH', 4096, 1),
    maxSearchValues: intFromEnv(env, 'MAX_SEARCH_VALUES', 100, 1),
    maxSearchChains: intFromEnv(env, 'MAX_SEARCH_CHAINS', 10, 1),
    maxSearchIncludes: intFromEnv(env, 'MAX_SEARCH_INCLUDES', 20, 1),
    maxPatchOperations: intFromEnv(env, 'MAX_PATCH_OPERATIONS', 200, 1),
    maxFhirPathLength: intFromEnv(env, 'MAX_FHIRPATH_LENGTH', 4096, 1),
    exportFileMaxResources: intFromEnv(env, 'EXPORT_FILE_MAX_RESOURCES', 10_000, 1),
    exportRetentionSeconds: intFromEnv(env, 'EXPORT_RETENTION_SECONDS', 3600, 1),
    exportPollSeconds: intFromEnv(env, 'EXPORT_POLL_SECONDS', 2, 1),
    measureConcurrency: intFromEnv(env, 'MEASURE_CONCURRENCY', 8, 1),
  };
}

/** Settings that are each fine alone but unsafe together; refused at start-up, before anything listens. */
export function checkDeployment(config: ServerConfig): void {
  if (config.auth.clientsFile && !config.publicBaseUrl) {
    throw new Error(
      'AUTH_CLIENTS_FILE needs PUBLIC_BASE_URL: client assertions are checked against the token endpoint URL',
    );
  }
  if (!config.production) return;
  if (config.findings.clock === 'test') {
    throw new Error(
      "FINDINGS_CLOCK=test lets any client move the server's clock: it is refused with NODE_ENV=production",
    );
  }
  if (!config.publicBaseUrl) {
    throw new Error('NODE_ENV=production needs PUBLIC_BASE_URL: links must never come from the Host header');
  }
  if (config.auth.mode === 'development' && !config.auth.clientsFile) {
    throw new Error(
      'NODE_ENV=production needs AUTH_HS256_SECRET, AUTH_JWKS_URI + AUTH_ISSUER or AUTH_CLIENTS_FILE ' +
        '(development mode signs tokens with a secret on local disk); AUTH=off only if meant',
    );
  }
}
