import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { notFound } from '../../fhir/outcome';
import type { ServerContext } from '../../rest/context';
import { clinicianCsp } from './csp';
import { devSignInEnabled, devSignInRouter } from './dev-sign-in';

/** Where `npm run build` puts the page (scripts/build-app.mjs), from src/http/... and from dist/http/... alike. */
export const APP_DIST = resolve(__dirname, '..', '..', '..', 'dist', 'app');

/**
 * The clinician page at /app/: static assets under a strict CSP, the sign-in settings it reads first,
 * and in development mode the practitioner sign-in. The page talks to /fhir with the user's token like
 * any client, so every access rule and the audit apply to it.
 */
export function clinicianApp(context: ServerContext, dir = APP_DIST): Router {
  const router = express.Router({ strict: true });
  const csp = clinicianCsp(context.config);
  router.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', csp);
    res.setHeader('Referrer-Policy', 'no-referrer');
    next();
  });

  router.get('/config.json', (_req, res) => {
    const { app, auth } = context.config;
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      signIn: devSignInEnabled(context) ? 'development' : auth.mode === 'off' ? 'off' : 'smart',
      fhirBase: '/fhir',
      clientId: app.clientId,
      scope: app.scope,
      ...(app.authorizeUrl ? { authorizeUrl: app.authorizeUrl } : {}),
      ...(app.tokenUrl ? { tokenUrl: app.tokenUrl } : {}),
    });
  });

  if (devSignInEnabled(context)) router.use('/dev', devSignInRouter(context));

  if (!existsSync(join(dir, 'index.html'))) {
    context.logger.warn({ dir }, 'the clinician page is not built (npm run build): /app/ answers 404');
  }
  // Asset names carry a content hash (esbuild): they never change, index.html always may.
  router.use(
    express.static(dir, {
      index: 'index.html',
      fallthrough: true,
      setHeaders: (res, path) => {
        res.setHeader('Cache-Control', path.endsWith('.html') ? 'no-cache' : 'public, max-age=31536000, immutable');
      },
    }),
  );
  router.use((req: Request, _res: Response, next: NextFunction) => {
    next(notFound(`Nothing is served at /app${req.path}`));
  });
  return router;
}
