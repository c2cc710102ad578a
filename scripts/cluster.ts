// `npm run cluster`: the production topology on this machine (see scripts/cluster/topology.ts),
// on the local PostgreSQL's `jarvis`, `temporal` and `temporal_visibility` databases. Prints
// the URLs; Ctrl-C stops every process it started. Settings (environment):
//   PG_URL       PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres)
//   PORT         HAProxy's port for HTTP and WebSocket (default 3000)
//   UI_PORT      Temporal UI (default 8233)   TEMPORAL_PORT  Temporal gRPC (default 7233)
//   JWT_SECRET   32+ characters (default: a random one per start, which signs everyone out on restart)
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { startCluster } from './cluster/topology.ts';

const env = process.env;
const cluster = await startCluster({
  pgUrl: env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  appDatabase: 'jarvis',
  temporal: { main: 'temporal', visibility: 'temporal_visibility' },
  port: Number(env.PORT ?? 3000),
  uiPort: Number(env.UI_PORT ?? 8233),
  temporalPort: Number(env.TEMPORAL_PORT ?? 7233),
  dataDir: resolve(import.meta.dirname, '..', '.data', 'cluster'),
  jwtSecret: env.JWT_SECRET ?? randomBytes(32).toString('hex'),
});

process.stdout.write([
  'Jarvis cluster running:',
  `  API and WebSocket (HAProxy)  ${cluster.url}   ${cluster.wsUrl}`,
  `  API nodes                    ${cluster.nodes.join('   ')}`,
  `  Temporal UI                  ${cluster.uiUrl}`,
  `  Temporal gRPC                ${cluster.temporalAddress}`,
  `  logs                         ${cluster.processes.logDir}`,
  'Ctrl-C stops everything.',
  '',
].join('\n'));

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping the cluster...\n');
    cluster.stop().then(() => process.exit(0), (err) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    });
  });
}
process.on('exit', () => cluster.processes.killAllNow());
