import { once } from 'node:events';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import { createServerContext } from './app-context';
import { devSecretPath } from './auth/dev-secret';
import { checkDeployment, loadConfig } from './config';
import { EmbeddedEngine, ENGINE_MIGRATION_LOG, startEmbeddedEngine } from './db/embedded-engine';
import { loadExamplesIfEmpty } from './examples';
import { createApp } from './http/app';
import { answerClientError } from './http/client-error';
import { createLogger } from './logger';

/**
 * Starts meds-fhir: the embedded engine when MONGODB_URI is not set, then the HTTP server. SIGTERM and
 * SIGINT stop accepting connections, let in-flight requests finish, then close the database.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  checkDeployment(config);
  const logger = createLogger(config.logLevel);
  if (config.auth.mode === 'off') {
    logger.warn('AUTH=off: authorization is switched off, every request has full access; never do this on a network');
  } else if (config.auth.mode === 'development') {
    logger.warn(
      { secret: devSecretPath(resolve(config.dataDir)) },
      'development mode: tokens are signed with a secret kept in DATA_DIR (npm run token); configure AUTH_HS256_SECRET or AUTH_JWKS_URI for production',
    );
  }
  let engine: EmbeddedEngine | undefined;
  let uri = config.mongodbUri;
  if (!uri) {
    const dataDir = resolve(config.dataDir);
    engine = await startEmbeddedEngine({
      dataDir,
      binary: config.engineBinary,
      // A migration step can take minutes on a large database: the one line worth seeing at start-up.
      log: (line) =>
        line.includes(ENGINE_MIGRATION_LOG)
          ? logger.info({ engine: line.trim() }, 'the database engine is migrating before it starts')
          : logger.debug({ engine: line.trim() }, 'engine'),
    });
    uri = engine.uri;
    logger.info({ dataDir }, 'embedded database engine started (FerretDB on SQLite)');
  }
  const running = await createServerContext(config, uri, logger);
  if (config.loadExamples) await loadExamplesIfEmpty(running.context);
  const app = createApp(running.context);
  const server: Server = app.listen(config.port, config.host);
  server.on('clientError', answerClientError);
  await once(server, 'listening');
  logger.info({ port: config.port, base: `http://localhost:${config.port}/fhir` }, 'meds-fhir listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining in-flight requests');
    server.close();
    server.closeIdleConnections();
    await once(server, 'close');
    await running.close();
    await engine?.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
