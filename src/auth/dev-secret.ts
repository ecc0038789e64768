import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where development mode keeps its signing secret, below DATA_DIR. */
export function devSecretPath(dataDir: string): string {
  return join(dataDir, 'auth', 'dev-hs256-secret');
}

/**
 * Development mode's HS256 secret: made on first start, kept in DATA_DIR readable by the owner only,
 * so `npm run token` can sign with it and tokens survive a restart.
 */
export function loadOrCreateDevSecret(dataDir: string): string {
  const path = devSecretPath(dataDir);
  try {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length >= 32) {
      // Tightened again in case the file was copied with looser permissions.
      if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
      return secret;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(join(dataDir, 'auth'), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('base64url');
  // wx: two processes starting at once on one DATA_DIR do not overwrite each other's secret.
  try {
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(path, 'utf8').trim();
    throw error;
  }
  return secret;
}
