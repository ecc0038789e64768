import type { ServerConfig } from '../../config';

/** Hosts always allowed outside production, so a developer's local receiver works without configuration. */
const DEVELOPMENT_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/**
 * Whether a rest-hook endpoint may be called: http(s) only, and only on a host the operator listed
 * (SUBSCRIPTION_ENDPOINT_HOSTS), so the server cannot be made to POST to arbitrary internal addresses.
 * Returns the reason it may not, or undefined.
 */
export function endpointRefusal(endpoint: string | undefined, config: ServerConfig): string | undefined {
  if (!endpoint) return 'A rest-hook subscription needs channel.endpoint';
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `channel.endpoint "${endpoint}" is not an absolute URL`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'channel.endpoint must be an http or https URL';
  if (url.username || url.password) return 'channel.endpoint must not carry credentials (use channel.header)';
  const allowed = [...config.subscriptions.endpointHosts, ...(config.production ? [] : DEVELOPMENT_HOSTS)];
  if (!allowed.includes(url.hostname.toLowerCase())) {
    return `channel.endpoint host "${url.hostname}" is not one this server may call (SUBSCRIPTION_ENDPOINT_HOSTS)`;
  }
  return undefined;
}
