import type { Resource } from '@medplum/fhirtypes';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerContext } from './rest/context';
import { UNRESTRICTED } from './auth/requester';
import { dispatch } from './rest/router';

export const examplesDir = join(__dirname, '..', 'examples');

/** Every example resource, in file-name order (so that referenced resources come first). */
export function exampleResources(dir = examplesDir): Resource[] {
  const files: string[] = [];
  const walk = (folder: string) => {
    for (const name of readdirSync(folder).sort()) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.json')) files.push(path);
    }
  };
  walk(dir);
  return files.map((file) => JSON.parse(readFileSync(file, 'utf8')) as Resource);
}

/**
 * Stores the examples that are not there yet, through the same pipeline as a client's PUT (so they are
 * validated and indexed like any write). Resources a user has since changed or deleted are left alone.
 */
export async function loadExamplesIfEmpty(context: ServerContext): Promise<number> {
  let loaded = 0;
  for (const resource of exampleResources()) {
    if (!resource.id || (await context.store.read(resource.resourceType, resource.id))) continue;
    await dispatch(
      {
        method: 'PUT',
        path: `${resource.resourceType}/${resource.id}`,
        query: [],
        headers: {},
        body: resource,
        baseUrl: context.config.publicBaseUrl ?? `http://localhost:${context.config.port}/fhir`,
        requestId: 'examples',
        requester: UNRESTRICTED,
      },
      context,
    );
    loaded++;
  }
  if (loaded) context.logger.info({ loaded }, 'example resources loaded');
  return loaded;
}
