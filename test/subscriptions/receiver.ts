import type { Bundle, Parameters } from '@medplum/fhirtypes';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: Bundle;
}

/** A rest-hook endpoint on 127.0.0.1 that records what it is sent and answers `status` (200 by default). */
export class Receiver {
  readonly received: Received[] = [];
  status = 200;
  private server?: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: Bundle = { resourceType: 'Bundle', type: 'history' };
        try {
          body = JSON.parse(raw) as Bundle;
        } catch {
          // recorded as is
        }
        this.received.push({ path: req.url ?? '', headers: req.headers, raw, body });
        res.statusCode = this.status;
        res.end();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server?.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  on(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()));
    this.server?.closeAllConnections();
    await closed;
  }
}

/** The SubscriptionStatus a notification starts with. */
export function statusOf(bundle: Bundle): Parameters {
  return bundle.entry?.[0]?.resource as Parameters;
}

export function parameter(status: Parameters, name: string) {
  return status.parameter?.find((p) => p.name === name);
}

export function notificationType(received: Received): string | undefined {
  return parameter(statusOf(received.body), 'type')?.valueCode;
}

/** Polls until `check` returns a value (generous: the machine is shared); no timing is asserted. */
export async function eventually<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
