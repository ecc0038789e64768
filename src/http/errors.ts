import type { Request, Response } from 'express';
import { FhirError, issue, outcome, serverError, tooLarge } from '../fhir/outcome';

/** What body-parser's errors (http-errors) carry besides the message. */
interface ReadError {
  status?: unknown;
  type?: unknown;
  expose?: unknown;
  code?: unknown;
  encoding?: unknown;
}

function fhirError(
  status: number,
  code: 'invalid' | 'not-supported' | 'incomplete',
  text: string,
  expression?: string,
) {
  return new FhirError(status, outcome([issue('error', code, text, expression)]));
}

/** The request's Content-Encoding, when it names one other than identity. */
function contentEncoding(req: Request): string | undefined {
  const value = req.headers['content-encoding'];
  const encoding = (Array.isArray(value) ? value.join(', ') : value)?.trim().toLowerCase();
  return encoding && encoding !== 'identity' ? encoding : undefined;
}

/** The client went away while its body was being read: nothing can be answered, and it is not our fault. */
export function isClientAbort(error: unknown): boolean {
  const { type, code } = (error ?? {}) as ReadError;
  return type === 'request.aborted' || code === 'ECONNRESET' || code === 'ECONNABORTED';
}

/**
 * The FHIR answer to an error raised while reading or handling a request. Errors of reading the body
 * (body-parser's: size, encoding, charset, length, abort) are the client's, answered 4xx with the
 * header at fault as the expression; anything unexpected is a 500 that quotes only the request id.
 */
export function toFhirError(error: unknown, req: Request, res: Response): FhirError {
  if (error instanceof FhirError) return error;
  const read = (error ?? {}) as ReadError;
  if (read.status === 413 || read.type === 'entity.too.large') {
    return tooLarge('The request body is larger than this server accepts (MAX_BODY_BYTES)');
  }
  if (read.type === 'encoding.unsupported') {
    return fhirError(
      415,
      'not-supported',
      `Content-Encoding ${contentEncoding(req) ?? String(read.encoding)} is not supported; send identity, gzip, deflate or br`,
      'Content-Encoding',
    );
  }
  if (read.type === 'charset.unsupported') {
    return fhirError(415, 'not-supported', 'The Content-Type charset is not supported; send UTF-8', 'Content-Type');
  }
  if (isClientAbort(error)) {
    return fhirError(400, 'incomplete', 'The client closed the connection before the body was received');
  }
  if (read.type === 'request.size.invalid') {
    return fhirError(400, 'incomplete', 'The body is not as long as its Content-Length says', 'Content-Length');
  }
  const encoding = contentEncoding(req);
  if (read.status === 400 && encoding) {
    // zlib could not decode what the client declared (a plain body sent as gzip, br or deflate).
    return fhirError(
      400,
      'invalid',
      `The body is not valid ${encoding} data, as Content-Encoding says`,
      'Content-Encoding',
    );
  }
  if (typeof read.status === 'number' && read.status >= 400 && read.status < 500 && read.expose === true) {
    return fhirError(read.status, 'invalid', 'The request body could not be read');
  }
  if (error instanceof URIError) return fhirError(400, 'invalid', 'The URL is not correctly percent-encoded');
  res.locals.unexpectedError = error;
  return serverError(`Internal error; quote request id ${String(res.getHeader('X-Request-Id') ?? '')}`);
}

/**
 * Logs a failure the client was answered with. Only a 500 is unexpected: a 503 the server chose (a
 * spent time budget, commits contending) is the server protecting itself, logged as a warning with its
 * IssueType so an operator can tell load from a fault.
 */
export function logFailure(req: Request, error: unknown, answer: FhirError): void {
  if (answer.status < 500) return;
  if (answer.status === 500) {
    req.log?.error({ err: error }, 'unexpected error');
    return;
  }
  const code = answer.outcome.issue?.[0]?.code;
  req.log?.warn({ status: answer.status, code, reason: answer.message }, 'request refused for now');
}
