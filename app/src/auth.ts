import type { Practitioner } from '@medplum/fhirtypes';
import { fhir, setFhirBase, setSession, type Session } from './fhir';

/** What /app/config.json says about signing in (src/http/clinician-app). */
export interface AppConfig {
  signIn: 'development' | 'smart' | 'off';
  fhirBase: string;
  clientId: string;
  scope: string;
  authorizeUrl?: string;
  tokenUrl?: string;
}

export async function loadAppConfig(): Promise<AppConfig> {
  const response = await fetch('./config.json', { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`config.json: ${response.status}`);
  const config = (await response.json()) as AppConfig;
  setFhirBase(config.fhirBase);
  return config;
}

/** The claims the page reads from its own access token (fhirUser names the practitioner). */
function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))) as Record<
      string,
      unknown
    >;
  } catch {
    return {};
  }
}

function sessionOf(token: string, extra: { fhirUser?: unknown; name?: unknown } = {}): Session {
  const claims = claimsOf(token);
  const fhirUser = String(extra.fhirUser ?? claims.fhirUser ?? '').replace(/^.*\/(Practitioner\/[^/]+)$/, '$1');
  return { token, fhirUser, name: String(extra.name ?? claims.name ?? fhirUser) };
}

// ---- development mode: pick a practitioner -------------------------------------------------------

export async function listPractitioners(): Promise<{ id: string; name: string }[]> {
  const response = await fetch('./dev/practitioners', { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`Practitioners could not be listed (${response.status})`);
  return ((await response.json()) as { practitioners: { id: string; name: string }[] }).practitioners;
}

export async function devSignIn(practitioner: string): Promise<Session> {
  const response = await fetch('./dev/sign-in', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ practitioner }),
  });
  if (!response.ok) throw new Error(`Sign-in refused (${response.status})`);
  const body = (await response.json()) as { access_token: string; fhirUser: string; practitioner: string };
  const session = sessionOf(body.access_token, { fhirUser: body.fhirUser, name: body.practitioner });
  setSession(session);
  return session;
}

// ---- SMART standalone launch with PKCE --------------------------------------------------------------

/**
 * The PKCE verifier and state must outlive the redirect to the identity provider and back, so they
 * alone wait in sessionStorage, and are removed as soon as the page returns. Tokens never go there.
 */
const PENDING = 'meds-fhir-pkce';

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

function randomText(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

interface Endpoints {
  authorize: string;
  token: string;
}

/** The server's SMART configuration first; the configured identity provider where it has no authorize endpoint. */
async function endpoints(config: AppConfig): Promise<Endpoints> {
  let smart: { authorization_endpoint?: string; token_endpoint?: string; grant_types_supported?: string[] } = {};
  const response = await fetch(`${config.fhirBase}/.well-known/smart-configuration`);
  if (response.ok) smart = (await response.json()) as typeof smart;
  const codeFlow = smart.authorization_endpoint && (smart.grant_types_supported ?? []).includes('authorization_code');
  const authorize = codeFlow ? smart.authorization_endpoint : config.authorizeUrl;
  const token = codeFlow ? smart.token_endpoint : config.tokenUrl;
  if (!authorize || !token) {
    throw new Error(
      'No authorization server: the SMART configuration has no authorize endpoint and APP_AUTHORIZE_URL / APP_TOKEN_URL are not set',
    );
  }
  return { authorize, token };
}

function redirectUri(): string {
  return `${location.origin}${location.pathname}`;
}

export async function startSmartLaunch(config: AppConfig): Promise<void> {
  const { authorize, token } = await endpoints(config);
  const verifier = randomText(48);
  const challenge = base64url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))),
  );
  const state = randomText(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, token, hash: location.hash }));
  const url = new URL(authorize);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state,
    aud: new URL(config.fhirBase, location.origin).toString(),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/** Back from the identity provider with ?code&state: exchange the code, keep the token in memory. */
export async function completeSmartLaunch(config: AppConfig): Promise<Session | undefined> {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  const error = params.get('error');
  if (!code && !error) return undefined;
  const pending = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  const { verifier, state, token, hash } = JSON.parse(pending ?? '{}') as Record<string, string | undefined>;
  history.replaceState(null, '', `${location.pathname}${hash ?? ''}`);
  // replaceState fires no hashchange: the router is told it is back on the view it left for.
  dispatchEvent(new HashChangeEvent('hashchange'));
  if (error) throw new Error(`The identity provider refused the sign-in: ${params.get('error_description') ?? error}`);
  if (!verifier || !token || params.get('state') !== state)
    throw new Error('The sign-in answer does not match this page');
  const response = await fetch(token, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: code as string,
      redirect_uri: redirectUri(),
      client_id: config.clientId,
      code_verifier: verifier,
    }),
  });
  if (!response.ok) throw new Error(`The token endpoint refused the code (${response.status})`);
  const body = (await response.json()) as { access_token: string; fhirUser?: string; id_token?: string };
  const idClaims = body.id_token ? claimsOf(body.id_token) : {};
  const session = sessionOf(body.access_token, {
    fhirUser: body.fhirUser ?? idClaims.fhirUser,
    name: idClaims.name,
  });
  setSession(session);
  return { ...session, name: await displayName(session) };
}

/** The practitioner's name from their own Practitioner resource, when the token carried none. */
async function displayName(session: Session): Promise<string> {
  if (session.name !== session.fhirUser || !session.fhirUser.startsWith('Practitioner/')) return session.name;
  try {
    const p = await fhir<Practitioner>(session.fhirUser);
    const n = p.name?.[0];
    const name = n?.text ?? [...(n?.prefix ?? []), ...(n?.given ?? []), n?.family].filter(Boolean).join(' ');
    if (name) setSession({ ...session, name });
    return name || session.name;
  } catch {
    return session.name;
  }
}
