import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { badRequest } from './outcome';

/**
 * Opaque, tamper-evident paging tokens: the position to resume from, as base64url JSON with an HMAC.
 * Servers behind one load balancer share PAGE_TOKEN_SECRET so that any of them can follow a link.
 */
export class PageTokens {
  private readonly key: Buffer;

  constructor(secret?: string) {
    this.key = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  }

  encode(position: unknown): string {
    const payload = Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
    return `${payload}.${this.sign(payload)}`;
  }

  decode<T>(token: string, parameter: string): T {
    const [payload, signature] = token.split('.');
    const expected = payload ? this.sign(payload) : '';
    if (
      !payload ||
      !signature ||
      signature.length !== expected.length ||
      !timingSafeEqual(Buffer.from(signature), Buffer.from(expected))
    ) {
      throw badRequest(
        `The ${parameter} paging token is not valid (expired, altered or from another server)`,
        parameter,
      );
    }
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as T;
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url').slice(0, 22);
  }
}
