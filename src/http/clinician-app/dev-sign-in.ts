import type { Practitioner } from '@medplum/fhirtypes';
import express, { type Request, type Response, type Router } from 'express';
import { SignJWT } from 'jose';
import { CLINICIAN_SCOPE } from '../../config';
import { loadOrCreateDevSecret } from '../../auth/dev-secret';
import { badRequest, notFound } from '../../fhir/outcome';
import type { ServerContext } from '../../rest/context';
import type { CurrentDocument } from '../../store/documents';

const TOKEN_SECONDS = 3600;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** Development mode only: nothing else issues user tokens without an identity provider. */
export function devSignInEnabled(context: ServerContext): boolean {
  return context.config.auth.mode === 'development' && !context.config.production;
}

function displayName(p: Practitioner): string {
  const name = p.name?.[0];
  const text = name?.text ?? [...(name?.prefix ?? []), ...(name?.given ?? []), name?.family].filter(Boolean).join(' ');
  return text || `Practitioner/${p.id}`;
}

/**
 * The clinician page's sign-in in development mode: pick a practitioner, get a token for them with a
 * clinician's scopes, signed with development mode's secret (as `npm run token` signs). Mounted only in
 * development mode; anywhere else these paths answer 404 like any path that serves nothing.
 */
export function devSignInRouter(context: ServerContext): Router {
  const router = express.Router();
  const secret = new TextEncoder().encode(loadOrCreateDevSecret(context.config.dataDir));

  router.get('/practitioners', async (_req: Request, res: Response) => {
    const docs = await context.store
      .directReader()
      .find<CurrentDocument>(
        'Practitioner',
        { deleted: { $ne: true } },
        { projection: { _id: 0, resource: 1 }, limit: 200 },
      );
    const practitioners = docs
      .map((d) => d.resource as Practitioner)
      .map((p) => ({ id: p.id as string, name: displayName(p) }))
      .sort((a, b) => a.name.localeCompare(b.name));
    res.json({ practitioners });
  });

  // JSON only: a cross-site form cannot send it without a CORS preflight this server does not grant.
  router.post('/sign-in', express.json({ limit: 1024, type: 'application/json' }), async (req, res) => {
    if (!req.is('application/json'))
      throw badRequest('Send {"practitioner": "<id>"} as application/json', 'Content-Type');
    const id = (req.body as { practitioner?: unknown } | undefined)?.practitioner;
    if (typeof id !== 'string' || !ID.test(id))
      throw badRequest('practitioner must be a Practitioner id', 'practitioner');
    const current = await context.store.read('Practitioner', id);
    if (!current || current.deleted) throw notFound(`Practitioner/${id} is not known`, 'practitioner');
    const now = Math.floor(Date.now() / 1000);
    let jwt = new SignJWT({ scope: CLINICIAN_SCOPE, fhirUser: `Practitioner/${id}`, client_id: 'meds-fhir-clinician' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(`Practitioner/${id}`)
      .setIssuedAt(now)
      .setExpirationTime(now + TOKEN_SECONDS);
    if (context.config.auth.issuer) jwt = jwt.setIssuer(context.config.auth.issuer);
    if (context.config.auth.audience) jwt = jwt.setAudience(context.config.auth.audience);
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      access_token: await jwt.sign(secret),
      token_type: 'Bearer',
      expires_in: TOKEN_SECONDS,
      scope: CLINICIAN_SCOPE,
      fhirUser: `Practitioner/${id}`,
      practitioner: displayName(current.resource as Practitioner),
    });
  });
  return router;
}
