/**
 * JSON numbers as they were written. JavaScript numbers keep neither a decimal's precision (`1.50`
 * reads as 1.5) nor how an integer was spelled (`14.0` and `1.4e1` read as 14), but FHIR needs both:
 * a decimal is stored and returned with its written precision, and an integer written with a fraction
 * or an exponent is invalid. So the few numbers whose text a number does not reproduce carry it beside
 * them: the object or array holding such a number has a NUMBER_TEXT map (key or index to text), and
 * every object or array above it is flagged HAS_NUMBER_TEXT so walks can skip the rest.
 *
 * Both are own enumerable symbol properties: JSON.stringify and the BSON serializer ignore them, and
 * object spread and rest (how the pipeline copies a resource to set its id and meta) keep them. A map
 * may thus be copied onto an object whose value was later replaced, so a text counts only while it
 * still reads as the number that is there.
 */
export const NUMBER_TEXT: unique symbol = Symbol('numberText');
export const HAS_NUMBER_TEXT: unique symbol = Symbol('hasNumberText');

type Container = Record<string | symbol, unknown> & {
  [NUMBER_TEXT]?: Record<string, string>;
  [HAS_NUMBER_TEXT]?: boolean;
};

/** A written number of a stored resource: its JSON Pointer and its text (the document's `nt` list). */
export interface NumberTextEntry {
  p: string;
  t: string;
}

function isContainer(value: unknown): value is Container {
  return typeof value === 'object' && value !== null;
}

/** Whether a JSON number's text is what JavaScript would write for the number it reads as. */
export function isCanonicalNumber(text: string): boolean {
  return String(Number(text)) === text;
}

/** The text of the number at container[key] when it was written otherwise than JavaScript writes it. */
export function numberText(container: object, key: string | number): string | undefined {
  const map = (container as Container)[NUMBER_TEXT];
  if (map === undefined) return undefined;
  const text = map[key];
  return text !== undefined && Number(text) === (container as Container)[key] ? text : undefined;
}

/** Whether a value (a resource, a Bundle entry's resource...) holds written number texts anywhere. */
export function hasNumberText(value: unknown): boolean {
  return isContainer(value) && value[HAS_NUMBER_TEXT] === true;
}

/** Records the text of container[key]; the caller flags the containers above (see restore and the parser). */
export function setNumberText(container: object, key: string | number, text: string): void {
  const c = container as Container;
  c[NUMBER_TEXT] = { ...(c[NUMBER_TEXT] ?? {}), [key]: text };
  c[HAS_NUMBER_TEXT] = true;
}

/** Gives a copy of a container (made by rebuilding it) the number texts of the original. */
export function copyNumberText(from: unknown, to: object): void {
  if (!isContainer(from) || from[HAS_NUMBER_TEXT] !== true) return;
  const target = to as Container;
  target[HAS_NUMBER_TEXT] = true;
  if (from[NUMBER_TEXT]) target[NUMBER_TEXT] = from[NUMBER_TEXT];
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Every written number text under value, with its JSON Pointer; undefined when there is none. */
export function collectNumberTexts(value: unknown): NumberTextEntry[] | undefined {
  if (!hasNumberText(value)) return undefined;
  const out: NumberTextEntry[] = [];
  const walk = (node: Container, pointer: string): void => {
    for (const key of Object.keys(node)) {
      const child = node[key];
      if (typeof child === 'number') {
        const text = numberText(node, key);
        if (text !== undefined) out.push({ p: `${pointer}/${escapePointer(key)}`, t: text });
      } else if (isContainer(child) && child[HAS_NUMBER_TEXT] === true) {
        walk(child, `${pointer}/${escapePointer(key)}`);
      }
    }
  };
  walk(value as Container, '');
  return out.length ? out : undefined;
}

/**
 * Puts stored number texts back on a resource read from the database. An entry whose pointer no
 * longer names the same number (it cannot, short of a bug) is ignored rather than trusted.
 */
export function restoreNumberTexts(value: unknown, entries: readonly NumberTextEntry[] | undefined): void {
  if (!entries?.length || !isContainer(value)) return;
  for (const { p, t } of entries) {
    if (typeof p !== 'string' || typeof t !== 'string') continue;
    const segments = p.split('/').slice(1).map(unescapePointer);
    const last = segments.pop();
    if (last === undefined) continue;
    const chain: Container[] = [value];
    let node: unknown = value;
    for (const segment of segments) {
      node = isContainer(node) ? node[segment] : undefined;
      if (!isContainer(node)) break;
      chain.push(node);
    }
    if (chain.length !== segments.length + 1) continue;
    const holder = chain[chain.length - 1];
    if (typeof holder[last] !== 'number' || Number(t) !== holder[last]) continue;
    setNumberText(holder, last, t);
    for (const c of chain) c[HAS_NUMBER_TEXT] = true;
  }
}

/**
 * Gives `to` (a changed copy of `from`: a patched resource) the texts of `from` at every pointer where
 * `to` still holds the same number, so a patch keeps the precision of what it did not touch.
 */
export function carryNumberTexts(from: unknown, to: unknown): void {
  restoreNumberTexts(to, collectNumberTexts(from));
}

/** Whether two versions hold the same written number texts (a change of precision is a change). */
export function sameNumberTexts(a: unknown, b: unknown): boolean {
  const key = (entries: NumberTextEntry[] | undefined): string =>
    (entries ?? [])
      .map((e) => `${e.p}=${e.t}`)
      .sort()
      .join('\n');
  if (!hasNumberText(a) && !hasNumberText(b)) return true;
  return key(collectNumberTexts(a)) === key(collectNumberTexts(b));
}
