// Shape of the production-like stack (docker-compose.yml, Dockerfile, temporal-config/). No Docker
// runs here, so this pins what a reader would otherwise check by hand: services, wiring, start
// order, and that the search attributes the compose cluster registers are the ones the code uses.
import { describe, it, expect } from '@jest/globals';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { SEARCH_ATTRIBUTES } from '../../src/temporal/search-attributes.ts';

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
  it('has the six services', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['api', 'postgres', 'temporal', 'temporal-setup', 'temporal-ui', 'worker'].sort());
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

  it('runs Temporal 1.29 on that postgres, with the dynamic config mounted', () => {
    const t = svc('temporal');
    expect(t.image).toMatch(/^temporalio\/(auto-setup|server):1\.29(\.|$)/);
    expect(env(t)).toMatchObject({
      DB: 'postgres12',
      DB_PORT: '5432',
      POSTGRES_SEEDS: 'postgres',
      POSTGRES_USER: 'jarvis',
      POSTGRES_PWD: 'jarvis',
      DYNAMIC_CONFIG_FILE_PATH: 'config/dynamicconfig/development-sql.yaml',
    });
    // The server's working directory is /etc/temporal, so the relative path above lands in the mount.
    expect(mounts(t)).toContain('./temporal-config/dynamicconfig:/etc/temporal/config/dynamicconfig');
    expect(existsSync(resolve(ROOT, 'temporal-config/dynamicconfig/development-sql.yaml'))).toBe(true);
    expect(ports(t)).toContain('7233:7233');
    expect(dependsOn(t)).toEqual({ postgres: 'service_healthy' });
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

  it('points the UI at temporal:7233 and publishes it on 8233', () => {
    const ui = svc('temporal-ui');
    expect(ui.image).toMatch(/^temporalio\/ui:/);
    expect(env(ui).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(ports(ui)).toContain('8233:8080');
  });

  describe('api and worker', () => {
    const api = svc('api');
    const worker = svc('worker');

    it('share one image build and run their own entry point', () => {
      expect(api.build).toBeDefined();
      expect(worker.build).toEqual(api.build);
      expect(worker.image).toBe(api.image);
      expect(words(api.command)).toMatch(/^node workers\/api\.ts$/);
      expect(words(worker.command)).toMatch(/^node workers\/task-worker\.ts$/);
    });

    it('reach postgres and temporal by service name, with a required JWT_SECRET', () => {
      for (const s of [api, worker]) {
        const e = env(s);
        const db = new URL(e.DATABASE_URL);
        expect([db.protocol, db.hostname, db.port || '5432', db.pathname]).toEqual(['postgres:', 'postgres', '5432', '/jarvis']);
        expect(e).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'default', NODE_ENV: 'production' });
        // `${VAR:?message}`: compose refuses to start when JWT_SECRET is unset or empty.
        expect(e.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?[^}]+\}$/);
      }
    });

    it('have the same settings, except what only the API needs', () => {
      const a = env(api);
      const w = env(worker);
      expect(a).toMatchObject({ PORT: '3000', HOST: '0.0.0.0', MIGRATE_ON_BOOT: 'true' });
      expect(w.MIGRATE_ON_BOOT).toBeUndefined(); // one migrator: the API, before it is healthy
      expect(w.PORT).toBeUndefined();
      for (const [k, v] of Object.entries(w)) expect([k, a[k]]).toEqual([k, v]);
      expect(ports(api)).toContain('3000:3000');
    });

    it('start in order: api after postgres and temporal-setup, worker after a healthy api', () => {
      expect(dependsOn(api)).toMatchObject({
        postgres: 'service_healthy',
        'temporal-setup': 'service_completed_successfully',
      });
      expect(dependsOn(worker)).toMatchObject({ api: 'service_healthy' });
      expect(words(api.healthcheck?.test)).toMatch(/node .*fetch\(.*:3000\/healthz/);
    });
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
