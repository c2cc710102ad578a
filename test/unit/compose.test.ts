// Shape of the production-like stack (docker-compose.yml, Dockerfile, temporal-config/). No Docker
// runs here, so this pins what a reader would otherwise check by hand: services, wiring, start
// order, and that the search attributes the compose cluster registers are the ones the code uses.
import { describe, it, expect } from '@jest/globals';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.ts';
import { UI_VERSION } from '../../scripts/cluster/binaries.ts';
import { temporalEnv } from '../../scripts/cluster/temporal.ts';
import { SERVICES } from '../../scripts/cluster/topology.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(resolve(ROOT, path), 'utf8');

type Port = string | number | { target: number; published?: string | number };
type Volume = string | { type?: string; source?: string; target: string };
interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, unknown> | string[];
  ports?: Port[];
  volumes?: Volume[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

// `merge: true`: the file shares the app settings between api and worker through `<<` merge keys.
const compose = YAML.parse(read('docker-compose.yml'), { merge: true }) as Compose;
const svc = (name: string): Service => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
};

// Compose accepts several spellings of the same thing; these bring them to one form.
function env(s: Service): Record<string, string> {
  const e = s.environment ?? {};
  if (Array.isArray(e)) {
    return Object.fromEntries(e.map((kv) => [kv.split('=')[0], kv.slice(kv.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v)]));
}
const words = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(' ') : (v ?? ''));
/** "published:target", without a host IP. */
function ports(s: Service): string[] {
  return (s.ports ?? []).map((p) =>
    typeof p === 'object' ? `${p.published}:${p.target}` : String(p).split(':').slice(-2).join(':'));
}
/** "source:target", without a mode. */
function mounts(s: Service): string[] {
  return (s.volumes ?? []).map((v) =>
    typeof v === 'object' ? `${v.source}:${v.target}` : v.split(':').slice(0, 2).join(':'));
}
function dependsOn(s: Service): Record<string, string> {
  const d = s.depends_on ?? {};
  if (Array.isArray(d)) return Object.fromEntries(d.map((n) => [n, 'service_started']));
  return Object.fromEntries(Object.entries(d).map(([n, c]) => [n, c.condition ?? 'service_started']));
}
const byName = (list: ReadonlyArray<{ name: string; type: string }>) =>
  list.map(({ name, type }) => ({ name, type })).sort((a, b) => a.name.localeCompare(b.name));

describe('docker-compose.yml', () => {
  it('has the services `npm run cluster` runs, plus postgres and the one-shot set-ups', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [...SERVICES, 'postgres', 'temporal-schema', 'temporal-setup'].sort());
  });

  it('runs postgres 16 with a healthcheck and a named volume', () => {
    const pg = svc('postgres');
    expect(pg.image).toBe('postgres:16');
    expect(env(pg)).toMatchObject({ POSTGRES_USER: 'jarvis', POSTGRES_PASSWORD: 'jarvis', POSTGRES_DB: 'jarvis' });
    expect(words(pg.healthcheck?.test)).toContain('pg_isready');
    const [volume] = mounts(pg).filter((m) => m.endsWith(':/var/lib/postgresql/data'));
    expect(volume).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(volume.split(':')[0]);
  });

  it('applies both Temporal schemas with the SQL tool of the same server version', () => {
    const s = svc('temporal-schema');
    expect(s.image).toMatch(/^temporalio\/admin-tools:1\.29\.1-/);
    const script = words(s.entrypoint);
    for (const step of ['create-database', 'setup-schema', 'update-schema']) expect(script).toContain(step);
    expect(script).toContain('postgresql/v12');
    expect(dependsOn(s)).toEqual({ postgres: 'service_healthy' });
  });

  it('runs Temporal 1.29.1 from temporal-config/server/jarvis.yaml, as the cluster does', () => {
    const t = svc('temporal');
    expect(t.image).toBe('temporalio/server:1.29.1');
    const mount = mounts(t).find((m) => m.startsWith('./temporal-config:'))!;
    expect(mount).toBeDefined();
    const args = words(t.entrypoint);
    expect(args).toContain(`--config ${mount.split(':')[1].slice(1)}/server --env jarvis`);
    // The same variables the cluster sets for the same template, pointed at the postgres service.
    const local = temporalEnv({ adminUrl: 'postgres://u:p@h:5432/postgres', main: 'temporal', visibility: 'temporal_visibility' }, 7233);
    const e = env(t);
    for (const k of Object.keys(local).filter((k) => k !== 'TEMPORAL_GRPC_PORT')) expect([k, k in e]).toEqual([k, true]);
    expect(e).toMatchObject({ TEMPORAL_DB_HOST: 'postgres', TEMPORAL_DB: 'temporal', TEMPORAL_VISIBILITY_DB: 'temporal_visibility' });
    expect(e.TEMPORAL_DYNAMIC_CONFIG).toBe(`${mount.split(':')[1]}/dynamicconfig/development-sql.yaml`);
    expect(read('temporal-config/server/jarvis.yaml').startsWith('# enable-template\n')).toBe(true);
    expect(ports(t)).toContain('7233:7233');
    expect(dependsOn(t)).toEqual({ 'temporal-schema': 'service_completed_successfully' });
  });

  it('sets up the namespace once Temporal is up, with the mounted setup.sh', () => {
    const s = svc('temporal-setup');
    expect(s.image).toMatch(/^temporalio\/admin-tools:1\.29/);
    expect(env(s).TEMPORAL_ADDRESS).toBe('temporal:7233');
    const mount = mounts(s).find((m) => m.startsWith('./temporal-config:'));
    expect(mount).toBeDefined();
    expect(`${words(s.entrypoint)} ${words(s.command)}`).toContain(`${mount!.split(':')[1]}/setup.sh`);
    expect(dependsOn(s).temporal).toMatch(/^service_(healthy|started)$/);
  });

  it('points the UI (2.42.1, as the cluster builds) at temporal:7233 and publishes it on 8233', () => {
    const ui = svc('temporal-ui');
    expect(ui.image).toBe(`temporalio/ui:${UI_VERSION.slice(1)}`);
    expect(env(ui).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(ports(ui)).toContain('8233:8080');
  });

  describe('API nodes and workers', () => {
    const apis = ['api-1', 'api-2'].map(svc);
    const workers = ['worker-1', 'worker-2'].map(svc);

    it('share one image build and run their own entry point', () => {
      for (const s of [...apis, ...workers]) {
        expect(s.build).toEqual(apis[0].build);
        expect(s.image).toBe(apis[0].image);
      }
      for (const s of apis) expect(words(s.command)).toBe('node workers/api.ts');
      for (const s of workers) expect(words(s.command)).toBe('node workers/task-worker.ts');
    });

    it('reach postgres and temporal by service name, with a required JWT_SECRET', () => {
      for (const s of [...apis, ...workers]) {
        const e = env(s);
        const db = new URL(e.DATABASE_URL);
        expect([db.protocol, db.hostname, db.port || '5432', db.pathname]).toEqual(['postgres:', 'postgres', '5432', '/jarvis']);
        expect(e).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'default', NODE_ENV: 'production' });
        expect(e.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?[^}]+\}$/);
      }
    });

    it('have one migrator, distinct node ids, and no volume of their own (files are in PostgreSQL)', () => {
      const [a1, a2] = apis.map(env);
      expect(a1).toMatchObject({ PORT: '3000', HOST: '0.0.0.0', MIGRATE_ON_BOOT: 'true', NODE_ID: 'api-1', TRUST_PROXY: 'true' });
      expect(a2.MIGRATE_ON_BOOT).toBeUndefined();
      expect(a2.NODE_ID).toBe('api-2');
      for (const w of workers.map(env)) {
        expect(w.MIGRATE_ON_BOOT).toBeUndefined();
        expect(w.PORT).toBeUndefined();
      }
      for (const s of apis) expect(mounts(s)).toEqual([]);
    });

    it('start after the first node has migrated', () => {
      expect(dependsOn(apis[0])).toMatchObject({ postgres: 'service_healthy', 'temporal-setup': 'service_completed_successfully' });
      for (const s of [apis[1], ...workers]) expect(dependsOn(s)).toMatchObject({ 'api-1': 'service_healthy' });
      expect(words(apis[0].healthcheck?.test)).toMatch(/node .*fetch\(.*:3000\/healthz/);
    });
  });

  it('puts HAProxy with the cluster\'s haproxy.cfg in front of both nodes on 3000', () => {
    const h = svc('haproxy');
    expect(h.image).toMatch(/^haproxy:2\.6/);
    expect(mounts(h)).toContain('./scripts/cluster/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg');
    expect(env(h)).toEqual({ JARVIS_LISTEN: '0.0.0.0:3000', JARVIS_API_1: 'api-1:3000', JARVIS_API_2: 'api-2:3000' });
    const cfg = read('scripts/cluster/haproxy.cfg');
    for (const v of Object.keys(env(h))) expect(cfg).toContain(`"\${${v}}"`);
    expect(ports(h)).toContain('3000:3000');
    expect(dependsOn(h)).toEqual({ 'api-1': 'service_healthy', 'api-2': 'service_healthy' });
  });
});

describe('temporal-config', () => {
  const file = JSON.parse(read('temporal-config/search-attributes.json')) as Array<{ name: string; type: string }>;

  it('registers exactly the search attributes the code uses', () => {
    expect(byName(file)).toEqual(byName(SEARCH_ATTRIBUTES));
  });

  it('has an executable setup.sh that reads search-attributes.json', () => {
    const path = resolve(ROOT, 'temporal-config/setup.sh');
    expect(statSync(path).mode & 0o111).not.toBe(0);
    const script = readFileSync(path, 'utf8');
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toContain('search-attributes.json');
    expect(script).toMatch(/operator cluster health/); // waits for the server
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('builds on Node 24 and runs as a non-root user', () => {
    expect(dockerfile).toMatch(/^FROM node:24-bookworm-slim$/m);
    const user = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
  });

  it('copies every folder the entry points need', () => {
    for (const dir of ['src', 'workflows', 'activities', 'workers', 'migrations']) {
      expect(dockerfile).toMatch(new RegExp(`^COPY\\s+${dir}\\s`, 'm'));
    }
  });

  it('starts files that exist', () => {
    const cmd = dockerfile.match(/^CMD\s+(\[.*\])\s*$/m);
    expect(cmd).not.toBeNull();
    const entries = [(JSON.parse(cmd![1]) as string[])[1], 'workers/api.ts', 'workers/task-worker.ts'];
    for (const entry of entries) expect([entry, existsSync(resolve(ROOT, entry))]).toEqual([entry, true]);
  });

  it('keeps local state out of the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.data', '.tools', '.git']));
  });
});
