import type { Resource } from '@medplum/fhirtypes';
import express, { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { pinoHttp } from 'pino-http';
import { pingDatabase } from '../db/connection';
import { bodyLimits } from '../fhir/json-limits';
import { stringifyJson } from '../fhir/json-text';
import { issue, methodNotAllowed, outcome } from '../fhir/outcome';
import type { FhirMethod, FhirRequest, FhirResponse, ResponseStream } from '../fhir/request';
import type { ServerContext } from '../rest/context';
import { dispatch } from '../rest/router';
import { AuthenticationError } from '../auth/authenticate';
import { ANONYMOUS, type Requester } from '../auth/requester';
import { smartConfiguration } from '../auth/smart-configuration';
import { isClientAbort, logFailure, toFhirError } from './errors';
import { checkRequestContentType, checkResponseFormat, parseFormBody, parseJsonBody } from './negotiation';
import { requestLogHooks } from './request-log';
import { authorizationOffWarning, corsPolicy, securityHeaders } from './security';
import { safeError } from '../logger';
import { clinicianApp } from './clinician-app';
import { AdmissionGate, admissionControl, arrivalOf, holdTurnUntil, releaseTurn } from './admission';

const FHIR_METHODS = new Set<FhirMethod>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
const REQUEST_ID = /^[\w\-.:]{1,128}$/;
const FHIR_CONTENT_TYPE = 'application/fhir+json; charset=utf-8';

function headerValue(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function setHeaders(res: Response, headers: FhirResponse['headers']): void {
  if (headers.etag) res.setHeader('ETag', headers.etag);
  if (headers.lastModified) res.setHeader('Last-Modified', headers.lastModified);
  if (headers.location) res.setHeader('Location', headers.location);
  if (headers.contentLocation) res.setHeader('Content-Location', headers.contentLocation);
  if (headers.retryAfter !== undefined) res.setHeader('Retry-After', String(headers.retryAfter));
  if (headers.progress) res.setHeader('X-Progress', headers.progress);
  if (headers.expires) res.setHeader('Expires', headers.expires);
}

function sendFhir(res: Response, response: FhirResponse, pretty: boolean): void {
  setHeaders(res, response.headers);
  res.status(response.status);
  if (response.body === undefined || response.status === 204 || response.status === 304) {
    res.end();
    return;
  }
  res.setHeader('Content-Type', FHIR_CONTENT_TYPE);
  res.send(stringifyJson(response.body, pretty ? 2 : undefined));
}

/** An operation that answers in formats of its own (`$viewdefinition-run`): it reads _format and Accept. */
function negotiatesItself(req: Request, context: ServerContext): boolean {
  const last = req.path.replace(/\/+$/, '').split('/').pop() ?? '';
  if (!last.startsWith('$')) return false;
  return !!context.operations.find((o) => o.name === last.slice(1))?.responseFormats;
}

/** Resolves when the response can take more (or is gone): writes wait for it rather than buffer. */
function writable(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Sends a streamed answer. Its first chunk is awaited before anything is sent, so that what fails at
 * once (a view that cannot run on the first resources) is thrown to the caller and answered with an
 * OperationOutcome; what fails later can only end the stream early, which a client sees as a
 * truncated body (the connection is reset, never a clean end).
 */
async function sendStream(req: Request, res: Response, response: FhirResponse, stream: ResponseStream): Promise<void> {
  const iterator = stream.chunks[Symbol.asyncIterator]();
  let next = await iterator.next();
  releaseTurn(res);
  setHeaders(res, response.headers);
  res.status(response.status);
  res.setHeader('Content-Type', stream.contentType);
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  try {
    while (!next.done && !closed) {
      if (!res.write(next.value)) await writable(res);
      next = await iterator.next();
    }
    if (!closed) res.end();
  } catch (error) {
    req.log.error({ err: error }, 'streamed answer failed after it started');
    res.destroy();
  } finally {
    if (!next.done) await iterator.return?.(undefined);
  }
}

/** A URL for the log: the path and the query's parameter names, values elided. */
export function withoutQueryValues(url: string | undefined): string | undefined {
  const start = url?.indexOf('?') ?? -1;
  if (!url || start < 0) return url;
  const names = url
    .slice(start + 1)
    .split('&')
    .map((pair) => `${pair.split('=')[0]}=…`);
  return `${url.slice(0, start)}?${names.join('&')}`;
}

/** PUBLIC_BASE_URL when set (always in production: see checkDeployment), else from the request's Host. */
function baseUrlOf(req: Request, context: ServerContext): string {
  return context.config.publicBaseUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}/fhir`;
}

/** The request without its body: what the audit of a request refused at the edge (401) records. */
function requestLine(req: Request, context: ServerContext): FhirRequest {
  const url = new URL(req.originalUrl, 'http://localhost');
  return {
    method: req.method as FhirMethod,
    path: req.path.replace(/^\/+|\/+$/g, ''),
    query: [...url.searchParams.entries()],
    headers: {},
    baseUrl: baseUrlOf(req, context),
    requestId: String(req.id),
    remoteAddress: req.socket.remoteAddress,
    startedAt: req.res && arrivalOf(req.res),
  };
}

/** Builds the transport-free request the FHIR pipeline works on. */
function toFhirRequest(req: Request, context: ServerContext): FhirRequest {
  let body: unknown;
  const raw = req.body as unknown;
  const contentType =
    Buffer.isBuffer(raw) && raw.length > 0 ? checkRequestContentType(headerValue(req, 'content-type')) : undefined;
  if (Buffer.isBuffer(raw) && raw.length > 0) {
    body =
      contentType === 'application/x-www-form-urlencoded'
        ? parseFormBody(raw, context.config)
        : parseJsonBody(raw, bodyLimits(context.config));
  }
  return {
    ...requestLine(req, context),
    headers: {
      ifMatch: headerValue(req, 'if-match'),
      ifNoneMatch: headerValue(req, 'if-none-match'),
      ifModifiedSince: headerValue(req, 'if-modified-since'),
      ifNoneExist: headerValue(req, 'if-none-exist'),
      prefer: headerValue(req, 'prefer'),
      accept: headerValue(req, 'accept'),
      contentType,
    },
    body,
  };
}

/** GET metadata and the SMART configuration are open to anyone (SMART App Launch, "Conformance"). */
function isPublic(req: Request): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && req.path.replace(/\/+$/, '') === '/metadata';
}

/** Who is asking: the verified bearer token, or no one for the public endpoints. */
async function requesterOf(req: Request, context: ServerContext): Promise<Requester> {
  if (isPublic(req)) return ANONYMOUS;
  return context.access.authenticator.authenticate(headerValue(req, 'authorization'));
}

export function createApp(context: ServerContext): express.Express {
  const app = express();
  const admission = new AdmissionGate(context.config.admission);
  app.locals.admission = admission;
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use(securityHeaders());
  app.use(corsPolicy(context.config.corsOrigins));
  if (!context.access.authenticator.enabled) app.use(authorizationOffWarning());

  app.use(
    pinoHttp({
      logger: context.logger,
      // Tokens and cookies never reach a log line, nor do bodies (pino-http logs none) or search
      // values (the audit trail keeps the query; the log keeps the parameter names).
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["proxy-authorization"]',
          'req.headers.cookie',
          'req.headers["if-none-exist"]',
          'res.headers["set-cookie"]',
        ],
        censor: '[redacted]',
      },
      serializers: {
        req: ({ query: _query, params: _params, ...req }: { url?: string; query?: unknown; params?: unknown }) => ({
          ...req,
          url: withoutQueryValues(req.url),
        }),
        err: safeError,
        res: requestLogHooks.serializers.res,
      },
      genReqId: (req, res) => {
        const incoming = req.headers['x-request-id'];
        const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      customErrorObject: (_req, res, _error, value) => ({ ...value, err: res.locals.unexpectedError }),
      customLogLevel: requestLogHooks.customLogLevel,
      customSuccessMessage: requestLogHooks.customSuccessMessage,
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const ready = await pingDatabase(context.store.db);
    if (!ready) return void res.status(503).json({ status: 'database unreachable' });
    // Details are informative: a module that cannot tell its own does not make the server unready.
    const details = await Promise.all(context.readiness.map((detail) => detail().catch(() => ({}))));
    const load = { requestsInFlight: admission.running, requestsQueued: admission.waiting };
    res.status(200).json(Object.assign({ status: 'ready' }, load, ...details));
  });

  // SMART Backend Services' token endpoint: form bodies of its own, outside the FHIR body parser.
  if (context.access.tokenEndpoint) app.use('/auth', context.access.tokenEndpoint);

  // The clinician page: /app without the slash would resolve its relative asset paths against /.
  app.use((req, res, next) => (req.path === '/app' ? res.redirect(301, '/app/') : next()));
  app.use('/app', clinicianApp(context));

  app.get('/fhir/.well-known/smart-configuration', (req, res) => {
    res.json(smartConfiguration(context.config, baseUrlOf(req, context)));
  });

  // A turn first, before the token is checked or the body read: a saturated server refuses at once.
  app.use('/fhir', admissionControl(admission));

  // Before anything else, the body included: no token, no answer about what exists (not even a 404
  // or 405), and no request body read for a client that has not authenticated.
  app.use('/fhir', async (req: Request, res: Response, next: NextFunction) => {
    try {
      res.locals.requester = await requesterOf(req, context);
      next();
    } catch (error) {
      if (error instanceof AuthenticationError) {
        res.setHeader('WWW-Authenticate', error.challenge);
        const refused = requestLine(req, context);
        for (const interceptor of context.interceptors) await interceptor.afterAuthenticationFailure?.(refused, error);
      }
      const fhirError = toFhirError(error, req, res);
      logFailure(req, error, fhirError);
      sendFhir(res, { status: fhirError.status, headers: {}, body: fhirError.outcome as Resource }, false);
    }
  });

  app.use(
    '/fhir',
    express.raw({ type: () => true, limit: context.config.maxBodyBytes }),
    async (req: Request, res: Response) => {
      const pretty = req.query._pretty === 'true';
      try {
        const requester = res.locals.requester as Requester;
        if (!FHIR_METHODS.has(req.method as FhirMethod))
          throw methodNotAllowed(`${req.method} is not a FHIR interaction`);
        if (!negotiatesItself(req, context)) {
          checkResponseFormat(
            typeof req.query._format === 'string' ? req.query._format : undefined,
            headerValue(req, 'accept'),
          );
        }
        const fhirRequest: FhirRequest = { ...toFhirRequest(req, context), requester };
        try {
          const response = await dispatch(fhirRequest, context);
          if (response.stream) await sendStream(req, res, response, response.stream);
          else sendFhir(res, response, pretty);
        } finally {
          // Before the answer's 'close' event, which gives the turn back once these have ended.
          for (const query of fhirRequest.abandonedQueries ?? []) holdTurnUntil(res, query);
        }
      } catch (error) {
        const fhirError = toFhirError(error, req, res);
        logFailure(req, error, fhirError);
        sendFhir(res, { status: fhirError.status, headers: {}, body: fhirError.outcome as Resource }, pretty);
      }
    },
  );

  // Errors raised before the FHIR handler (body too large, unreadable body) still answer in FHIR.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    // The client hung up while sending its body: there is no one to answer (logged by pino-http).
    if (isClientAbort(error)) return;
    const fhirError = toFhirError(error, req, res);
    logFailure(req, error, fhirError);
    sendFhir(res, { status: fhirError.status, headers: {}, body: fhirError.outcome }, req.query?._pretty === 'true');
  });

  app.use((req: Request, res: Response) => {
    sendFhir(
      res,
      { status: 404, headers: {}, body: outcome([issue('error', 'not-found', `Nothing is served at ${req.path}`)]) },
      false,
    );
  });
  return app;
}
