import { randomBytes } from 'node:crypto';
import {
  HAS_NUMBER_TEXT,
  hasNumberText,
  isCanonicalNumber,
  NUMBER_TEXT,
  numberText,
  setNumberText,
} from './number-text';

/**
 * JSON text in and out, keeping the numbers JSON.parse would rewrite (src/fhir/number-text.ts).
 *
 * Reading: JSON.parse, plus a look for a number JavaScript would write differently (`1.50`, `14.0`,
 * `1e2`, `-0`, integers past 2^53). Almost no body has one. A regular expression finds every number
 * token of the text (and, rarely, a piece of a string that looks like one) in well under a
 * microsecond per kilobyte; only when one of those is not canonical does an exact scan, which skips
 * strings, decide; and only a body that really has one is parsed again, by a small parser that
 * records each such number's text.
 */
export function parseJsonText(text: string): unknown {
  const value: unknown = JSON.parse(text); // syntax errors exactly as JSON.parse words them
  if (!hasRewrittenNumber(text)) return value;
  try {
    return new SourceParser(text).parse();
  } catch (error) {
    // Nesting deeper than our recursive parser's stack (JSON.parse's goes deeper): the numbers then read
    // as JSON.parse reads them, rather than the request failing over how they were written.
    if (error instanceof RangeError) return value;
    throw error;
  }
}

/**
 * In valid JSON a number follows `:`, `[` or `,` and is followed by `,`, `}`, `]` or the end (with
 * whitespace between). Pieces of strings can match too (`"a:1,2"`), never the other way round.
 */
const NUMBER_CANDIDATE = /[:,[]\s*(-?\d[\d.eE+-]*)(?=\s*(?:[,}\]]|$))/g;

function mayHaveRewrittenNumber(text: string): boolean {
  const first = text.trimStart().charCodeAt(0);
  if (first === 45 || (first >= 48 && first <= 57)) return true; // the text is a number
  NUMBER_CANDIDATE.lastIndex = 0;
  for (let m = NUMBER_CANDIDATE.exec(text); m !== null; m = NUMBER_CANDIDATE.exec(text)) {
    if (!isCanonicalNumber(m[1])) return true;
  }
  return false;
}

/** Whether some number of this (valid) JSON text is written otherwise than JavaScript writes it. */
export function hasRewrittenNumber(text: string): boolean {
  return mayHaveRewrittenNumber(text) && scanForRewrittenNumber(text);
}

function scanForRewrittenNumber(text: string): boolean {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      i = endOfString(text, i + 1);
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      const end = endOfNumber(text, i + 1);
      if (!isCanonicalNumber(text.slice(i, end))) return true;
      i = end;
    } else {
      i++;
    }
  }
  return false;
}

/** The index after the closing quote of a string whose content starts at `from`. */
function endOfString(text: string, from: number): number {
  let at = from;
  for (;;) {
    const quote = text.indexOf('"', at);
    if (quote < 0) return text.length;
    let backslashes = 0;
    for (let b = quote - 1; b >= from && text.charCodeAt(b) === 92; b--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}

function endOfNumber(text: string, from: number): number {
  let j = from;
  for (; j < text.length; j++) {
    const d = text.charCodeAt(j);
    // digits . e E + -
    if (!((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45)) break;
  }
  return j;
}

/** A parser for text JSON.parse has accepted, that keeps the text of rewritten numbers. */
class SourceParser {
  private i = 0;
  /** The text of the number value() just read, when JavaScript would write it otherwise. */
  private written: string | undefined;

  constructor(private readonly text: string) {}

  parse(): unknown {
    return this.value();
  }

  private skipSpace(): void {
    const t = this.text;
    for (;;) {
      const c = t.charCodeAt(this.i);
      if (c === 32 || c === 10 || c === 13 || c === 9) this.i++;
      else return;
    }
  }

  private value(): unknown {
    this.skipSpace();
    const c = this.text.charCodeAt(this.i);
    if (c === 123) return this.object();
    if (c === 91) return this.array();
    if (c === 34) return this.string();
    if (c === 116) return this.literal(4, true);
    if (c === 102) return this.literal(5, false);
    if (c === 110) return this.literal(4, null);
    const end = endOfNumber(this.text, this.i + 1);
    const token = this.text.slice(this.i, end);
    this.i = end;
    if (!isCanonicalNumber(token)) this.written = token;
    return Number(token);
  }

  private literal(length: number, value: boolean | null): boolean | null {
    this.i += length;
    return value;
  }

  private string(): string {
    const start = this.i;
    this.i = endOfString(this.text, start + 1);
    const raw = this.text.slice(start, this.i);
    return raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  }

  /** Records what value() just read into container[key]: a written number, or a child that holds one. */
  private note(container: object, key: string | number, child: unknown): boolean {
    if (this.written !== undefined) {
      setNumberText(container, key, this.written);
      this.written = undefined;
      return true;
    }
    return hasNumberText(child);
  }

  private object(): Record<string, unknown> {
    const obj: Record<string, unknown> = {};
    let holds = false;
    this.i++;
    this.skipSpace();
    if (this.text.charCodeAt(this.i) === 125) {
      this.i++;
      return obj;
    }
    for (;;) {
      this.skipSpace();
      const key = this.string();
      this.skipSpace();
      this.i++; // ':'
      const child = this.value();
      // JSON.parse makes "__proto__" an own property; so must we, rather than set the prototype.
      if (key === '__proto__') {
        Object.defineProperty(obj, key, { value: child, enumerable: true, writable: true, configurable: true });
      } else {
        obj[key] = child;
      }
      if (this.note(obj, key, child)) holds = true;
      this.skipSpace();
      if (this.text.charCodeAt(this.i++) === 125) break; // '}', else ','
    }
    if (holds) (obj as Record<symbol, unknown>)[HAS_NUMBER_TEXT] = true;
    return obj;
  }

  private array(): unknown[] {
    const list: unknown[] = [];
    let holds = false;
    this.i++;
    this.skipSpace();
    if (this.text.charCodeAt(this.i) === 93) {
      this.i++;
      return list;
    }
    for (;;) {
      const child = this.value();
      list.push(child);
      if (this.note(list, list.length - 1, child)) holds = true;
      this.skipSpace();
      if (this.text.charCodeAt(this.i++) === 93) break; // ']', else ','
    }
    if (holds) (list as unknown as Record<symbol, unknown>)[HAS_NUMBER_TEXT] = true;
    return list;
  }
}

/**
 * Whether a response body may hold written number texts: a resource, or the resources of a Bundle's
 * entries or a Parameters' parameters (search, history, transaction responses, operations).
 */
function mayHoldNumberText(body: unknown): boolean {
  if (hasNumberText(body)) return true;
  if (typeof body !== 'object' || body === null) return false;
  const { entry, parameter } = body as { entry?: unknown; parameter?: unknown };
  const holds = (list: unknown): boolean =>
    Array.isArray(list) &&
    list.some(
      (item) => typeof item === 'object' && item !== null && hasNumberText((item as { resource?: unknown }).resource),
    );
  return holds(entry) || holds(parameter);
}

/**
 * JSON.stringify, writing each number that carries its written text as written. Bodies without any
 * (nearly all) go straight to JSON.stringify; the others are written with a replacer that puts a
 * unique placeholder where such a number goes, replaced by the text afterwards.
 */
export function stringifyJson(body: unknown, space?: number): string {
  if (!mayHoldNumberText(body)) return JSON.stringify(body, undefined, space);
  const texts: string[] = [];
  const mark = `@nt-${randomBytes(8).toString('hex')}-`;
  const json = JSON.stringify(
    body,
    function (this: unknown, key: string, value: unknown): unknown {
      if (typeof value !== 'number' || typeof this !== 'object' || this === null) return value;
      if ((this as Record<symbol, unknown>)[NUMBER_TEXT] === undefined) return value;
      const text = numberText(this, key);
      if (text === undefined) return value;
      texts.push(text);
      return `${mark}${texts.length - 1}`;
    },
    space,
  );
  if (!texts.length) return json;
  return json.replace(new RegExp(`"${mark}(\\d+)"`, 'g'), (_all, index: string) => texts[Number(index)]);
}
