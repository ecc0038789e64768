/** Small helpers for walking untyped JSON safely (the validator never trusts its input's shape). */

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON kind of a value, for messages such as "expected string, found number". */
export function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Values of a property as a list: absent → [], single → [v], array → array. */
export function asList(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Structural equality, as fixed[x] requires (every property present in both, and nothing more). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/**
 * pattern[x] semantics: every property of the pattern appears in the value with a matching value;
 * for arrays, each pattern item is matched by some item of the value. The value may carry more.
 */
export function matchesPattern(value: unknown, pattern: unknown): boolean {
  if (Array.isArray(pattern)) {
    const items = asList(value);
    return pattern.every((p) => items.some((item) => matchesPattern(item, p)));
  }
  if (isObject(pattern)) {
    return isObject(value) && Object.keys(pattern).every((k) => matchesPattern(value[k], pattern[k]));
  }
  return value === pattern;
}

/** The first key of an object whose name starts with prefix (used for fixed[x], pattern[x], value[x]). */
export function choiceEntry(obj: JsonObject, prefix: string): [string, unknown] | undefined {
  for (const key of Object.keys(obj)) {
    if (key.length > prefix.length && key.startsWith(prefix) && isUpper(key.charCodeAt(prefix.length))) {
      return [key, obj[key]];
    }
  }
  return undefined;
}

export function isUpper(charCode: number): boolean {
  return charCode >= 65 && charCode <= 90;
}

/** 'Quantity' → 'Quantity', 'dateTime' key suffix 'DateTime' → type code 'dateTime'. */
export function typeCodeFromSuffix(suffix: string, knownTypes: ReadonlySet<string>): string {
  if (knownTypes.has(suffix)) return suffix;
  const lowered = suffix.charAt(0).toLowerCase() + suffix.slice(1);
  return knownTypes.has(lowered) ? lowered : suffix;
}

export function upperFirst(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
