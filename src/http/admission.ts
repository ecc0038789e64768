import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { FhirError, issue, outcome } from '../fhir/outcome';

/** How many FHIR requests one process works on at once, and how long others may wait for a turn. */
export interface AdmissionLimits {
  /** MAX_REQUESTS_IN_FLIGHT: requests handled at once. */
  maxInFlight: number;
  /** MAX_REQUESTS_QUEUED: requests that may wait for a turn; one more is answered 503 at once. */
  maxQueued: number;
  /** MAX_QUEUE_WAIT_MS: longest a request waits for its turn; then it is answered 503. */
  maxQueueWaitMs: number;
}

/** Seconds a refused client is told to wait (Retry-After): long enough for the queue to move. */
const RETRY_AFTER_SECONDS = 1;

interface Waiter {
  admit: () => void;
  refuse: (error: FhirError) => void;
}

/** Thrown when a request gets no turn: the server is saturated, which is not the client's fault. */
export class OverloadedError extends FhirError {
  readonly retryAfterSeconds = RETRY_AFTER_SECONDS;
  constructor(text: string) {
    super(503, outcome([issue('error', 'transient', text)]));
  }
}

/**
 * A bound on the requests in flight, with a short FIFO queue before it. Without it, every client's
 * request is started at once and they share the CPU: under a write storm each one slows down until
 * all of them, and the event loop's health checks with them, are late. With it, the requests that
 * run finish at their own speed, and those that cannot get a turn soon are told so (503 and
 * Retry-After) instead of being answered late.
 */
export class AdmissionGate {
  private inFlight = 0;
  private readonly queue: Waiter[] = [];

  constructor(private readonly limits: AdmissionLimits) {}

  get running(): number {
    return this.inFlight;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Resolves with the function that gives the turn back, once the request may run. `gone` is called
   * with a callback for when the client hangs up while waiting, so that its place is given up.
   */
  enter(gone: (onGone: () => void) => void): Promise<() => void> {
    if (this.inFlight < this.limits.maxInFlight && this.queue.length === 0) return Promise.resolve(this.take());
    if (this.queue.length >= this.limits.maxQueued) {
      return Promise.reject(
        new OverloadedError(
          `The server is handling as many requests as it can (MAX_REQUESTS_IN_FLIGHT ${this.limits.maxInFlight}, ` +
            `MAX_REQUESTS_QUEUED ${this.limits.maxQueued}); try again after ${RETRY_AFTER_SECONDS} s`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        admit: () => {
          clearTimeout(timer);
          resolve(this.take());
        },
        refuse: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const leave = (): boolean => {
        const at = this.queue.indexOf(waiter);
        if (at < 0) return false;
        this.queue.splice(at, 1);
        return true;
      };
      const timer = setTimeout(() => {
        if (!leave()) return;
        waiter.refuse(
          new OverloadedError(
            `The request waited ${this.limits.maxQueueWaitMs} ms (MAX_QUEUE_WAIT_MS) for a turn without getting one; ` +
              `try again after ${RETRY_AFTER_SECONDS} s`,
          ),
        );
      }, this.limits.maxQueueWaitMs);
      gone(() => {
        if (leave()) clearTimeout(timer);
      });
      this.queue.push(waiter);
    });
  }

  private take(): () => void {
    this.inFlight++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.inFlight--;
      this.queue.shift()?.admit();
    };
  }
}

/**
 * Gives the request's turn back before its answer is done: a streamed answer (an export file, a view)
 * goes at its client's pace, which should not hold a turn that others wait for.
 */
export function releaseTurn(res: Response): void {
  (res.locals.releaseTurn as (() => void) | undefined)?.();
}

/**
 * Keeps the request's turn taken after its answer until `work` ends: an engine query left running
 * after a spent time budget still loads the engine, and a new request admitted in its place would
 * only slow down behind it.
 */
export function holdTurnUntil(res: Response, work: Promise<unknown>): void {
  (res.locals.turnHolds as Promise<unknown>[] | undefined)?.push(work);
}

/** When a request arrived, before it waited for its turn: its time budget counts from here. */
export function arrivalOf(res: Response): number | undefined {
  return res.locals.arrivedAt as number | undefined;
}

/**
 * The gate as middleware: a request waits for its turn before its token is checked or its body read
 * (an unread body stays in the socket's buffers), and gives the turn back when its answer is done or
 * its client has gone. A refusal goes to the error handler, which answers it as an OperationOutcome.
 */
export function admissionControl(gate: AdmissionGate): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    res.locals.arrivedAt = Date.now();
    gate
      .enter((onGone) => res.once('close', onGone))
      .then(
        (release) => {
          // The client may have hung up while waiting, after its turn came but before this ran.
          if (res.destroyed || req.destroyed) return release();
          const holds: Promise<unknown>[] = [];
          res.locals.turnHolds = holds;
          const giveBack = () => void Promise.allSettled(holds).then(release);
          res.once('close', giveBack);
          res.locals.releaseTurn = giveBack;
          next();
        },
        (error: unknown) => {
          if (error instanceof OverloadedError) res.setHeader('Retry-After', String(error.retryAfterSeconds));
          next(error);
        },
      );
  };
}
