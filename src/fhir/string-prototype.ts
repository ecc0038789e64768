// antlr4 extends String.prototype when it loads; fhirpath (its only user here) is loaded first.
import 'fhirpath';
import { randomInt } from 'node:crypto';

interface AntlrString {
  seed?: number;
  hashCode?: (this: string) => number;
}

/**
 * antlr4, the parser runtime of fhirpath.js, adds `String.prototype.seed` (a random hash seed) and
 * `String.prototype.hashCode` when it loads. fhirpath.js reads members of a string with JavaScript
 * property access, so `Patient.gender.seed` evaluated to the seed for anyone whose FHIRPath the server
 * runs (FHIRPath Patch paths, SearchParameter expressions, checks). The seed moves into the closure of
 * an equivalent hash (antlr only needs equal strings to hash alike), so no string has a `seed`.
 */
export function hideAntlrSeed(): void {
  const prototype = String.prototype as unknown as AntlrString;
  if (prototype.seed === undefined) return;
  const seed = prototype.seed | 0 || randomInt(1, 2 ** 31);
  Object.defineProperty(String.prototype, 'hashCode', {
    configurable: true,
    writable: true,
    enumerable: false,
    // FNV-1a over the UTF-16 units, started from the seed.
    value: function hashCode(this: string): number {
      let hash = (0x811c9dc5 ^ seed) | 0;
      for (let i = 0; i < this.length; i++) hash = Math.imul(hash ^ this.charCodeAt(i), 0x01000193);
      return hash;
    },
  });
  delete prototype.seed;
}

hideAntlrSeed();
