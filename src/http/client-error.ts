import type { Socket } from 'node:net';
import { issue, outcome } from '../fhir/outcome';

/** Node's codes for a request line and headers longer than --max-http-header-size (16 KB by default). */
const TOO_LARGE = new Set(['HPE_HEADER_OVERFLOW', 'HPE_URI_OVERFLOW']);

/**
 * Answers a request Node's HTTP parser refused before Express saw it (a URL or headers over the size
 * limit, a malformed request line) with an OperationOutcome like every other error, instead of Node's
 * bare status line. Attach it to the server's `clientError` event.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const large = TOO_LARGE.has(error.code ?? '');
  const status = large ? 431 : 400;
  const text = large
    ? 'The request line and headers are larger than this server reads; send a long search as POST [type]/_search'
    : 'The request is not valid HTTP';
  const body = JSON.stringify(outcome([issue('error', large ? 'too-costly' : 'structure', text)]));
  socket.end(
    `HTTP/1.1 ${status} ${large ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      'Content-Type: application/fhir+json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
