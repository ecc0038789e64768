import type { ServerConfig } from '../../config';

/**
 * The page's Content-Security-Policy: its own scripts and stylesheets only (no inline script or style,
 * no eval), API calls to this origin, plus the identity provider's token endpoint when the page signs in
 * there (the code exchange is a fetch). Nothing may frame it, and forms post nowhere else.
 */
export function clinicianCsp(config: ServerConfig): string {
  const connect = ["'self'"];
  if (config.app.tokenUrl) connect.push(new URL(config.app.tokenUrl).origin);
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connect.join(' ')}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}
