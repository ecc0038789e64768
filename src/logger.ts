import pino, { Logger } from 'pino';

interface SafeError {
  type: string;
  message: string;
  stack?: string;
  code?: unknown;
  cause?: SafeError;
}

/**
 * Errors as log lines keep their type, message, stack and code only: the driver's errors carry the
 * documents they failed on (a bulk write error holds every resource of the batch), which are
 * resource contents and have no place in a log.
 */
export function safeError(error: unknown, depth = 0): SafeError | unknown {
  // An Error, or one a serializer already made plain (pino-http hands its own serializers' output on).
  const value = error as { type?: unknown; message?: unknown; stack?: unknown; code?: unknown; cause?: unknown };
  if (typeof error !== 'object' || error === null || typeof value.message !== 'string') return error;
  const type = typeof value.type === 'string' ? value.type : (error.constructor?.name ?? 'Error');
  return {
    type,
    message: value.message,
    ...(typeof value.stack === 'string' ? { stack: value.stack } : {}),
    ...(typeof value.code === 'string' || typeof value.code === 'number' ? { code: value.code } : {}),
    ...(value.cause && depth < 3 ? { cause: safeError(value.cause, depth + 1) as SafeError } : {}),
  };
}

/** JSON lines on stdout, or on `destination` (tests read what the server logs). */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'meds-fhir' },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: safeError },
  };
  return destination ? pino(options, destination) : pino(options);
}
