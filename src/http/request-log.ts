import type { Request, Response } from 'express';

/** nginx's "client closed request": logged for a response the client hung up on before it was sent. */
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * pino-http hooks that log a client hanging up as what it is. pino-http logs when the response closes;
 * one that closed before it finished was never received, whatever status the handler had set (a 500
 * from a body read cut short was the usual one), so it is logged as 499 with its own message.
 */
export const requestLogHooks = {
  customLogLevel(_req: Request, res: Response): 'info' {
    // Runs first when pino-http logs a response, so the status it then prints is the corrected one.
    if (!res.writableFinished) res.statusCode = CLIENT_CLOSED_REQUEST;
    return 'info';
  },
  customSuccessMessage(_req: Request, res: Response): string {
    return res.statusCode === CLIENT_CLOSED_REQUEST ? 'request aborted by the client' : 'request completed';
  },
  serializers: {
    // pino prints no status for a response whose headers were never sent; an aborted one shows 499.
    res(serialized: { statusCode: number | null; raw?: Response }) {
      const raw = serialized.raw;
      if (raw && !raw.headersSent && raw.statusCode === CLIENT_CLOSED_REQUEST)
        serialized.statusCode = CLIENT_CLOSED_REQUEST;
      return serialized;
    },
  },
};
