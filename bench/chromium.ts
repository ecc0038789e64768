import { chromium, type Browser } from 'playwright-core';

/** Debian's package (`.ci/run` installs it): no browser download works on this network. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless Debian Chromium for the browser tests and bench/app.ts. Playwright gives every launch a
 * fresh temporary profile (its own --user-data-dir). Without the background-networking flags Chromium
 * keeps trying the closed network (Google's hosts, QUIC) while pages load.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
