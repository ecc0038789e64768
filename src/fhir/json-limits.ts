import type { ServerConfig } from '../config';
import { parseJsonText } from './json-text';
import { badRequest, FhirError, issue, outcome } from './outcome';

/** Bounds on one JSON document: what a request may make this server walk, copy, validate and store. */
export interface JsonLimits {
  maxDepth: number;
  /** Items of one array, and members of one object. */
  maxArrayLength: number;
  /** Characters of one string; base64Binary `data` elements are exempt (bounded by the body size). */
  maxStringLength: number;
  /** JSON values (objects, arrays, primitives) in the whole document. */
  maxElements: number;
  /** The setting maxElements comes from, for messages. */
  elementsSetting: string;
}

/**
 * Keys that reach the prototype chain when request data is copied into an object with assignment.
 * None of them is a FHIR element name, so a body that has one is refused outright.
 */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Attachment.data, Binary.data and Signature.data hold base64: documents, not text to read or index. */
const UNBOUNDED_STRING_KEY = 'data';

/** The limits of a request body (a Bundle may have maxBundleEntries entries, above the array limit). */
export function bodyLimits(config: ServerConfig): JsonLimits {
  return {
    maxDepth: config.maxJsonDepth,
    maxArrayLength: Math.max(config.maxArrayLength, config.maxBundleEntries),
    maxStringLength: config.maxStringLength,
    maxElements: config.maxBodyElements,
    elementsSetting: 'MAX_BODY_ELEMENTS',
  };
}

/** The limits of one resource to store, or read as an operation's input. */
export function resourceLimits(config: ServerConfig): JsonLimits {
  return {
    maxDepth: config.maxJsonDepth,
    maxArrayLength: config.maxArrayLength,
    maxStringLength: config.maxStringLength,
    maxElements: config.maxResourceElements,
    elementsSetting: 'MAX_RESOURCE_ELEMENTS',
  };
}

type Segment = string | number;

/** A FHIRPath-like location from the root type and the keys and indexes below it: `Patient.name[0].given`. */
function expressionOf(root: string | undefined, segments: Segment[]): string {
  let expression = root ?? '';
  for (const segment of segments) {
    if (typeof segment === 'number') expression += `[${segment}]`;
    else expression += expression ? `.${segment}` : segment;
  }
  return expression || '$this';
}

type Violation =
  | { kind: 'depth' }
  | { kind: 'array' }
  | { kind: 'object' }
  | { kind: 'string' }
  | { kind: 'elements' }
  | { kind: 'key'; key: string };

function limitError(violation: Violation, limits: JsonLimits, expression: string, what: string): FhirError {
  switch (violation.kind) {
    case 'depth':
      return new FhirError(
        400,
        outcome([
          issue(
            'error',
            'structure',
            `${what} nests objects and arrays more than ${limits.maxDepth} levels deep (MAX_JSON_DEPTH)`,
            expression,
          ),
        ]),
      );
    case 'key':
      return badRequest(`"${violation.key}" is not a FHIR element name and is not accepted as a JSON key`, expression);
    case 'array':
      return tooCostly(`${expression} has more than ${limits.maxArrayLength} items (MAX_ARRAY_LENGTH)`, expression);
    case 'object':
      return tooCostly(`${expression} has more than ${limits.maxArrayLength} members (MAX_ARRAY_LENGTH)`, expression);
    case 'string':
      return tooCostly(
        `${expression} is a string of more than ${limits.maxStringLength} characters (MAX_STRING_LENGTH)`,
        expression,
      );
    case 'elements':
      return tooCostly(
        `${what} has more than ${limits.maxElements} JSON values (${limits.elementsSetting})`,
        expression,
      );
  }
}

function tooCostly(text: string, expression: string): FhirError {
  return new FhirError(413, outcome([issue('error', 'too-costly', text, expression)]));
}

interface Frame {
  array: boolean;
  /** Items (arrays) or members (objects) seen so far. */
  count: number;
  /** Objects: the current member's key, as a byte range of the text (decoded only when needed). */
  keyStart: number;
  keyEnd: number;
  keyEscaped: boolean;
  /** Objects: the next string is a key. */
  expectingKey: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const FORBIDDEN_KEY_BYTES = [...FORBIDDEN_KEYS].map((key) => Buffer.from(key));
const RESOURCE_TYPE = Buffer.from('resourceType');
const UNBOUNDED_KEY_BYTES = Buffer.from(UNBOUNDED_STRING_KEY);

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isDelimiter(c: number): boolean {
  return isWhitespace(c) || c === 0x2c || c === 0x5d || c === 0x7d || c === 0x3a;
}

/**
 * Checks JSON text against the limits before it is parsed, in one pass over the bytes that stops at
 * the first violation: JSON.parse of a 10 MB body of nested arrays or a million-member object costs
 * hundreds of milliseconds of blocked event loop, this costs a few and usually far less. Malformed
 * text is left to JSON.parse; the scan never throws on it.
 */
export function checkJsonText(text: Buffer, limits: JsonLimits, what = 'The body'): void {
  const scan = new TextScan(text, limits);
  const violation = scan.run();
  if (!violation) return;
  // A container over its size is named itself, not the item that went over.
  const segments = violation.kind === 'array' || violation.kind === 'object' ? scan.path().slice(0, -1) : scan.path();
  throw limitError(violation, limits, expressionOf(scan.rootType(), segments), what);
}

class TextScan {
  private readonly frames: Frame[] = [];
  private elements = 0;

  constructor(
    private readonly b: Buffer,
    private readonly limits: JsonLimits,
  ) {}

  /** Scans until the end, or until the first violation, which it returns. */
  run(): Violation | undefined {
    const { b, limits, frames } = this;
    const length = b.length;
    let i = 0;
    let top: Frame | undefined;
    while (i < length) {
      const c = b[i];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x3a) {
        i++;
        continue;
      }
      if (c === 0x2c) {
        if (top && !top.array) top.expectingKey = true;
        i++;
        continue;
      }
      if (c === 0x5d || c === 0x7d) {
        frames.pop();
        top = frames[frames.length - 1];
        i++;
        continue;
      }
      if (c === QUOTE && top && !top.array && top.expectingKey) {
        // Keys are short: read byte by byte, noting escapes (an escaped key may still spell __proto__).
        let j = i + 1;
        let escaped = false;
        while (j < length && b[j] !== QUOTE) {
          if (b[j] === BACKSLASH) {
            escaped = true;
            j++;
          }
          j++;
        }
        top.keyStart = i + 1;
        top.keyEnd = Math.min(j, length);
        top.keyEscaped = escaped;
        top.expectingKey = false;
        i = j + 1;
        if (++top.count > limits.maxArrayLength) return { kind: 'object' };
        const keyLength = top.keyEnd - top.keyStart;
        if (escaped || keyLength === 9 || keyLength === 11) {
          const key = this.forbiddenKey(top);
          if (key) return { kind: 'key', key };
        }
        continue;
      }
      // A value starts here.
      if (top?.array && ++top.count > limits.maxArrayLength) return { kind: 'array' };
      if (++this.elements > limits.maxElements) return { kind: 'elements' };
      if (c === 0x7b || c === 0x5b) {
        top = { array: c === 0x5b, count: 0, keyStart: 0, keyEnd: 0, keyEscaped: false, expectingKey: c === 0x7b };
        frames.push(top);
        i++;
        if (frames.length > limits.maxDepth) return { kind: 'depth' };
        continue;
      }
      if (c === QUOTE) {
        const start = i + 1;
        const end = endOfString(b, i);
        i = end + 1;
        // Bytes bound characters from above, so the exact length is counted only for long strings.
        if (end - start > limits.maxStringLength && !this.isKey(top, UNBOUNDED_KEY_BYTES)) {
          if (stringLength(b, start, end) > limits.maxStringLength) return { kind: 'string' };
        }
        continue;
      }
      // A number, true, false or null: up to the next delimiter.
      do i++;
      while (i < length && !isDelimiter(b[i]));
    }
    return undefined;
  }

  /** Whether the current member of an object frame has this key. */
  private isKey(frame: Frame | undefined, key: Buffer): boolean {
    if (!frame || frame.array || frame.count === 0) return false;
    if (frame.keyEscaped) return this.keyText(frame) === key.toString();
    const { keyStart, keyEnd } = frame;
    return keyEnd - keyStart === key.length && this.b.compare(key, 0, key.length, keyStart, keyEnd) === 0;
  }

  private forbiddenKey(frame: Frame): string | undefined {
    if (frame.keyEscaped) {
      const text = this.keyText(frame);
      return FORBIDDEN_KEYS.has(text) ? text : undefined;
    }
    const found = FORBIDDEN_KEY_BYTES.find((key) => this.isKey(frame, key));
    return found?.toString();
  }

  private keyText(frame: Frame): string {
    const raw = this.b.toString('utf8', frame.keyStart, frame.keyEnd);
    if (!frame.keyEscaped) return raw;
    try {
      return JSON.parse(`"${raw}"`) as string;
    } catch {
      return raw;
    }
  }

  /** Where the scan stopped: the keys and indexes of the open containers. */
  path(): Segment[] {
    const segments: Segment[] = [];
    for (const frame of this.frames) {
      if (frame.array) {
        if (frame.count > 0) segments.push(frame.count - 1);
      } else if (frame.count > 0) segments.push(this.keyText(frame));
    }
    return segments;
  }

  /** The root object's resourceType, for error expressions: read from the start, stopping once found. */
  rootType(): string | undefined {
    const { b } = this;
    const frames: Frame[] = [];
    let i = 0;
    while (i < b.length) {
      const c = b[i];
      const top = frames[frames.length - 1];
      if (c === 0x7b || c === 0x5b) {
        if (frames.length === 0 && c === 0x5b) return undefined;
        frames.push({
          array: c === 0x5b,
          count: 0,
          keyStart: 0,
          keyEnd: 0,
          keyEscaped: false,
          expectingKey: c === 0x7b,
        });
        i++;
      } else if (c === 0x5d || c === 0x7d) {
        frames.pop();
        i++;
      } else if (c === QUOTE) {
        const end = endOfString(b, i);
        if (top && !top.array && top.expectingKey) {
          top.keyStart = i + 1;
          top.keyEnd = end;
          top.keyEscaped = b.subarray(i + 1, end).includes(BACKSLASH);
          top.expectingKey = false;
          top.count++;
        } else if (frames.length === 1 && this.isKey(top, RESOURCE_TYPE)) {
          return b.toString('utf8', i + 1, end);
        }
        i = end + 1;
      } else {
        if (c === 0x2c && top && !top.array) top.expectingKey = true;
        i++;
      }
    }
    return undefined;
  }
}

/** Where the string that opens at `open` closes: its closing quote, or the end of the text. */
function endOfString(b: Buffer, open: number): number {
  let from = open + 1;
  for (;;) {
    const quote = b.indexOf(QUOTE, from);
    if (quote < 0) return b.length;
    let backslashes = 0;
    while (quote - 1 - backslashes > open && b[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** A string's length in UTF-16 units, as JSON.parse would make it, from its bytes between the quotes. */
function stringLength(b: Buffer, start: number, end: number): number {
  let length = 0;
  for (let j = start; j < end; j++) {
    const c = b[j];
    if (c === BACKSLASH) {
      j += b[j + 1] === 0x75 ? 5 : 1;
      length++;
    } else if ((c & 0xc0) !== 0x80) {
      // UTF-8: count lead bytes; four-byte sequences are two UTF-16 units.
      length += c >= 0xf0 ? 2 : 1;
    }
  }
  return length;
}

/** Parses JSON text that checkJsonText has let through; bad syntax is a structure error (400). */
export function parseBoundedJson(text: Buffer, limits: JsonLimits, what = 'The body'): unknown {
  checkJsonText(text, limits, what);
  try {
    // Numbers JavaScript would write otherwise (`1.50`, `14.0`) keep their text (src/fhir/json-text.ts).
    return parseJsonText(text.toString('utf8'));
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new FhirError(400, outcome([issue('error', 'structure', `${what} is not valid JSON: ${detail}`)]));
  }
}

interface ValueFrame {
  value: unknown;
  depth: number;
  parent?: ValueFrame;
  segment?: Segment;
}

function segmentsOf(frame: ValueFrame): Segment[] {
  const segments: Segment[] = [];
  for (let f: ValueFrame | undefined = frame; f?.segment !== undefined; f = f.parent) segments.push(f.segment);
  return segments.reverse();
}

/**
 * Checks a parsed value (a resource built by a patch, a Bundle entry) against the limits, without
 * recursion, so that no depth can overflow the stack. Stops at the first violation.
 */
export function checkJsonValue(value: unknown, limits: JsonLimits, what = 'The resource'): void {
  const root = typeof (value as { resourceType?: unknown })?.resourceType === 'string' ? value : undefined;
  const rootType = root ? String((root as { resourceType: string }).resourceType) : undefined;
  const stack: ValueFrame[] = [{ value, depth: 0 }];
  let elements = 0;
  const fail = (violation: Violation, frame: ValueFrame): never => {
    throw limitError(violation, limits, expressionOf(rootType, segmentsOf(frame)), what);
  };
  while (stack.length) {
    const frame = stack.pop() as ValueFrame;
    const current = frame.value;
    if (++elements > limits.maxElements) fail({ kind: 'elements' }, frame);
    if (typeof current === 'string') {
      const exempt = frame.segment === UNBOUNDED_STRING_KEY;
      if (!exempt && current.length > limits.maxStringLength) fail({ kind: 'string' }, frame);
      continue;
    }
    if (current === null || typeof current !== 'object') continue;
    const depth = frame.depth + 1;
    if (depth > limits.maxDepth) fail({ kind: 'depth' }, frame);
    if (Array.isArray(current)) {
      if (current.length > limits.maxArrayLength) fail({ kind: 'array' }, frame);
      for (let i = current.length - 1; i >= 0; i--) stack.push({ value: current[i], depth, parent: frame, segment: i });
      continue;
    }
    const keys = Object.keys(current);
    if (keys.length > limits.maxArrayLength) fail({ kind: 'object' }, frame);
    const forbidden = keys.find((key) => FORBIDDEN_KEYS.has(key));
    if (forbidden !== undefined)
      fail({ kind: 'key', key: forbidden }, { value: undefined, depth, parent: frame, segment: forbidden });
    for (let k = keys.length - 1; k >= 0; k--) {
      const key = keys[k];
      stack.push({ value: (current as Record<string, unknown>)[key], depth, parent: frame, segment: key });
    }
  }
}

/** How many JSON values a value holds (itself included), counted up to `stopAt` at most. */
export function countJsonValues(value: unknown, stopAt: number): number {
  const stack: unknown[] = [value];
  let count = 0;
  while (stack.length && count < stopAt) {
    const current = stack.pop();
    count++;
    if (current === null || typeof current !== 'object') continue;
    if (Array.isArray(current)) for (const item of current) stack.push(item);
    else for (const key of Object.keys(current)) stack.push((current as Record<string, unknown>)[key]);
  }
  return count;
}
