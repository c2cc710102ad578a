// A PostgreSQL cluster of the test's own (initdb, pg_ctl, on a free port, in a temporary
// directory), so a test may kill it with SIGKILL and start it again without touching the
// server every other test file shares. Debian's binaries, run as the `postgres` user (initdb
// and the server refuse to run as root).
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The newest PostgreSQL found under /usr/lib/postgresql/<major>/bin. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)) : [];
  if (majors.length === 0) throw new Error('no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)');
  return join(root, majors[0], 'bin');
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

export class PrivatePostgres {
  readonly port: number;
  private readonly dir: string;
  private readonly data: string;
  private readonly bin = binDir();
  /** As root, the server runs as `postgres`; as anyone else, as that user. */
  private readonly asUser: { uid: number; gid: number } | undefined;

  private constructor(port: number) {
    this.port = port;
    this.dir = mkdtempSync(join(tmpdir(), 'private-pg-'));
    this.data = join(this.dir, 'data');
    if (userInfo().uid === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(this.dir, uid, gid);
      this.asUser = { uid, gid };
    }
  }

  /** initdb and start; the cluster's own `postgres` database is the one to use. */
  static async create(): Promise<PrivatePostgres> {
    const pg = new PrivatePostgres(await freePort());
    await pg.exec('initdb', ['-D', pg.data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    await pg.start();
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /**
   * Starts the server. After a SIGKILL of the postmaster its backends may hold the shared
   * memory for a moment (they exit when they notice their parent is gone): tried again meanwhile.
   */
  async start(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.exec('pg_ctl', [
          '-D', this.data, '-w', '-t', '20', '-l', join(this.dir, 'server.log'),
          '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`,
          'start',
        ]);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`private PostgreSQL did not start: ${(err as Error).message}\n${this.log()}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  /** The postmaster's pid (from postmaster.pid), or null when it is not running. */
  pid(): number | null {
    const file = join(this.data, 'postmaster.pid');
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return this.isAlive(pid) ? pid : null;
  }

  /** SIGKILL of the postmaster: no shutdown, no checkpoint; the next start recovers from WAL. */
  async kill9(): Promise<void> {
    const pid = this.pid();
    if (pid === null) throw new Error('private PostgreSQL is not running');
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (this.isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  async stop(): Promise<void> {
    if (this.pid() !== null) await this.exec('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** For exit hooks (synchronous): SIGKILL the server if it runs, remove its directory. */
  discard(): void {
    const pid = this.pid();
    if (pid !== null) process.kill(pid, 'SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  log(): string {
    const file = join(this.dir, 'server.log');
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-20).join('\n') : '';
  }

  /** Alive and not a zombie (a killed daemon whose parent never reaps it still has a pid). */
  private isAlive(pid: number): boolean {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  }

  private async exec(tool: string, args: string[]): Promise<void> {
    await run(join(this.bin, tool), args, { ...this.asUser, cwd: this.dir, env: { PATH: process.env.PATH, LANG: 'C' } });
  }
}
