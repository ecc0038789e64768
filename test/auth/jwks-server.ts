import type { JSONWebKeySet } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A real HTTP server on a free local port that serves a JWK Set, counting the fetches. */
export interface JwksServer {
  url: string;
  /** What GET answers from now on: a key set, or a status with a text body (a broken identity provider). */
  serve(answer: JSONWebKeySet | { status: number; body: string } | 'hang'): void;
  fetches(): number;
  close(): Promise<void>;
}

export async function startJwksServer(initial: JSONWebKeySet): Promise<JwksServer> {
  let answer: JSONWebKeySet | { status: number; body: string } | 'hang' = initial;
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    fetches++;
    if (answer === 'hang') return;
    if ('status' in answer) {
      res.writeHead(answer.status, { 'Content-Type': 'text/plain' }).end(answer.body);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    serve: (next) => {
      answer = next;
    },
    fetches: () => fetches,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A URL on which nothing listens: a server was started there and closed again. */
export async function unreachableUrl(): Promise<string> {
  const server = await startJwksServer({ keys: [] });
  await server.close();
  return server.url;
}
