// Writes the OpenAPI document to docs/openapi.json: `npm run openapi` (node scripts/openapi.ts).
// No database, no Temporal: the document is built from the route specs, whose handlers never run
// here. test/unit/openapi.test.ts fails when the file on disk differs from a fresh build.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@temporalio/client';
import { loadConfig } from '../src/config.ts';
import { AccessTokens } from '../src/domain/tokens.ts';
import { apiRoutes } from '../src/http/app.ts';
import { buildOpenApi, packageVersion } from '../src/http/openapi.ts';
import type { RouteSpec } from '../src/http/route.ts';

export const OPENAPI_FILE = resolve(import.meta.dirname, '..', 'docs', 'openapi.json');

/**
 * The route specs without a running system. apiRoutes() only stores its dependencies in closures
 * for the handlers; building the document reads the specs' data (paths, schemas, statuses) and
 * never calls a handler, so Temporal and the sockets can be inert stand-ins. The config is the
 * defaults (`loadConfig({})`): nothing in the document depends on the environment.
 */
export function offlineRoutes(): RouteSpec[] {
  const config = loadConfig({});
  const notLive = () => {
    throw new Error('offline route specs: handlers are not meant to run');
  };
  return apiRoutes({
    config,
    temporal: new Proxy({}, { get: notLive }) as unknown as Client,
    tokens: new AccessTokens(config.JWT_SECRET, config.ACCESS_TOKEN_TTL_S),
    sockets: { endDeviceConnection: notLive, endLoginSession: notLive },
  });
}

/** The document as docs/openapi.json holds it (no `servers`: paths are relative to the host). */
export function offlineDocument(): object {
  return buildOpenApi(offlineRoutes(), { version: packageVersion() });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  writeFileSync(OPENAPI_FILE, `${JSON.stringify(offlineDocument(), null, 2)}\n`);
  console.log(`wrote ${OPENAPI_FILE}`);
}
