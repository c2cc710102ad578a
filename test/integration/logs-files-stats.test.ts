// Logs (POST /logs, GET /logs, GET /tasks/:id/logs, device logs), files (multipart upload streamed
// to a scratch file, bytes kept in PostgreSQL, type by content, size limit, quota, download, delete) and the dashboard stats, on the
// real system with small file limits and a DATA_DIR of its own.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Device, Log, Task, WorkflowVersion, type TaskStatus } from '../../src/db/entities.ts';
import { recordDeviceLog } from '../../src/domain/logs.ts';
import { sanitizeFilename } from '../../src/http/routes/files.ts';
import { addDevice, addWorkflow, eventually, linear, signup, type Reply } from '../helpers/api.ts';
import { startSystem, type System } from '../helpers/system.ts';

const KiB = 1024;
const FILE_MAX = 32 * KiB;
const QUOTA = 100 * KiB;

let sys: System;
let dataDir: string;

interface TestUser {
  token: string;
  userId: string;
  deviceId: string;
  workflowId: string;
  versionId: string;
}

async function newUser(): Promise<TestUser> {
  const u = await signup(sys.api);
  const device = await addDevice(sys.api, u.token);
  const workflowId = await addWorkflow(sys.api, u.token, linear([{ type: 'demo.echo' }]));
  const [version] = await sys.orm.em.fork().find(WorkflowVersion, { workflowId });
  return { token: u.token, userId: u.userId, deviceId: device.id, workflowId, versionId: version.id };
}

/** A task row written directly (no run): status, times and duration as given. */
async function addTask(u: TestUser, status: TaskStatus, createdAt: Date, durationMs: number | null = null): Promise<string> {
  const em = sys.orm.em.fork();
  const id = randomUUID();
  const finished = ['completed', 'failed', 'cancelled'].includes(status);
  em.create(Task, {
    id, userId: u.userId, workflowId: u.workflowId, workflowVersionId: u.versionId, deviceId: u.deviceId,
    status, statusReason: null, priority: 'medium', parameters: {}, idempotencyKey: null,
    temporalWorkflowId: `task-${id}`, temporalRunId: null, currentNode: null, progress: finished ? 100 : 0,
    result: null, error: null, lastSeq: 0, createdAt, updatedAt: createdAt,
    startedAt: status === 'pending' ? null : createdAt,
    finishedAt: finished ? new Date(createdAt.getTime() + (durationMs ?? 0)) : null,
    durationMs,
  });
  await em.flush();
  return id;
}

function expectInvalid(res: Reply, path: string) {
  expect([res.status, res.body.code]).toEqual([400, 1001]);
  expect((res.body.data.errors as { path: string }[]).map((e) => e.path)).toContain(path);
}
const expectNotFound = (res: Reply) => expect([res.status, res.body.code]).toEqual([404, 2001]);
const expectUnauthenticated = (res: Reply) => expect([res.status, res.body.code]).toEqual([401, 1002]);

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'jarvis-files-'));
  sys = await startSystem({
    env: { DATA_DIR: dataDir, FILE_MAX_BYTES: String(FILE_MAX), USER_QUOTA_BYTES: String(QUOTA), RATE_LIMIT_IP_PER_MIN: '100000', RATE_LIMIT_AUTH_PER_MIN: '100000' },
  });
});

afterAll(async () => {
  await sys?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// ---- logs --------------------------------------------------------------------------------------

describe('logs', () => {
  let a: TestUser;
  let b: TestUser;
  let taskA: string;
  let taskB: string;

  beforeAll(async () => {
    a = await newUser();
    b = await newUser();
    taskA = await addTask(a, 'completed', new Date(), 100);
    taskB = await addTask(b, 'completed', new Date(), 100);
  });

  it('POST /logs stores a log without secret-looking keys, at any depth', async () => {
    const res = await sys.api.post('/logs', {
      level: 'warn', message: 'disk almost full',
      details: {
        free_mb: 12, password: 'hunter2', Token: 't', nested: { Authorization: 'Bearer x', api_token: 'y', ok: true, deeper: { client_secret: 's', kept: 'yes' } },
        list: [{ secret: 's', keep: 1 }, 'plain'],
      },
    }, a.token);
    expect(res.status).toBe(201);
    const log = res.body.data.log;
    expect(log).toMatchObject({ level: 'warn', category: 'system', message: 'disk almost full', task_id: null, device_id: null });
    const expected = { free_mb: 12, nested: { ok: true, deeper: { kept: 'yes' } }, list: [{ keep: 1 }, 'plain'] };
    expect(log.details).toEqual(expected);
    // What the database holds, not only what the API shows.
    const row = await sys.orm.em.fork().findOneOrFail(Log, { id: log.id });
    expect(row.details).toEqual(expected);
    expect(JSON.stringify(row.details)).not.toMatch(/hunter2|Bearer|client_secret|"t"|"y"|"s"/);
  });

  it('POST /logs about one of my tasks; GET /tasks/:id/logs lists it', async () => {
    const res = await sys.api.post('/logs', { level: 'info', message: 'step done', task_id: taskA, details: null }, a.token);
    expect(res.status).toBe(201);
    expect(res.body.data.log).toMatchObject({ task_id: taskA, category: 'task', details: null });
    const list = await sys.api.get(`/tasks/${taskA}/logs`, a.token);
    expect(list.status).toBe(200);
    expect(list.body.data).toMatchObject({ total: 1, page: 1, page_size: 20, next_cursor: null });
    expect(list.body.data.list.map((l: { id: string }) => l.id)).toEqual([res.body.data.log.id]);
  });

  it('POST /logs: bad input is a 400 naming the field', async () => {
    expectInvalid(await sys.api.post('/logs', { message: 'no level' }, a.token), 'level');
    expectInvalid(await sys.api.post('/logs', { level: 'info' }, a.token), 'message');
    expectInvalid(await sys.api.post('/logs', { level: 'verbose', message: 'x' }, a.token), 'level');
    expectInvalid(await sys.api.post('/logs', { level: 'info', message: 42 }, a.token), 'message');
    expectInvalid(await sys.api.post('/logs', { level: 'info', message: 'x'.repeat(10_001) }, a.token), 'message');
    expectInvalid(await sys.api.post('/logs', { level: 'info', message: 'x', category: 'audit' }, a.token), 'category');
    expectInvalid(await sys.api.post('/logs', { level: 'info', message: 'x', details: [1, 2] }, a.token), 'details');
    expectInvalid(await sys.api.post('/logs', { level: 'info', message: 'x', task_id: 'not-a-uuid' }, a.token), 'task_id');
    expectInvalid(await sys.api.post('/logs', { level: 'info', message: 'x', extra: 1 }, a.token), '(root)');
    expect((await sys.api.post('/logs', { level: 'info', message: 'x'.repeat(10_000) }, a.token)).status).toBe(201);
  });

  it('another user\'s task is a 404, and so is its log list', async () => {
    expectNotFound(await sys.api.post('/logs', { level: 'info', message: 'x', task_id: taskB }, a.token));
    expectNotFound(await sys.api.get(`/tasks/${taskB}/logs`, a.token));
    expectNotFound(await sys.api.get(`/tasks/${randomUUID()}/logs`, a.token));
    expectInvalid(await sys.api.get('/tasks/nope/logs', a.token), 'id');
  });

  it('no token: 401', async () => {
    expectUnauthenticated(await sys.api.post('/logs', { level: 'info', message: 'x' }));
    expectUnauthenticated(await sys.api.get('/logs'));
    expectUnauthenticated(await sys.api.get(`/tasks/${taskA}/logs`));
  });

  it('device logs: task kept only when it is the user\'s, details redacted, unknown level stored as info', async () => {
    const own = await recordDeviceLog(sys.orm.em, {
      userId: a.userId, taskId: taskA, deviceId: a.deviceId, level: 'error', message: 'boom', details: { stack: 'x', access_token: 'secret!' },
    });
    expect(own).toMatchObject({ taskId: taskA, deviceId: a.deviceId, level: 'error', category: 'device', details: { stack: 'x' } });
    const foreign = await recordDeviceLog(sys.orm.em, { userId: a.userId, taskId: taskB, deviceId: a.deviceId, level: 'info', message: 'not mine' });
    expect(foreign.taskId).toBeNull();
    const garbage = await recordDeviceLog(sys.orm.em, { userId: a.userId, taskId: 'garbage', deviceId: a.deviceId, level: 'loud', message: 'x\u0000y' });
    expect(garbage).toMatchObject({ taskId: null, level: 'info', message: 'xy' });

    const byDevice = await sys.api.get(`/logs?device_id=${a.deviceId}&category=device`, a.token);
    expect(byDevice.body.data.total).toBe(3);
    const forTask = await sys.api.get(`/tasks/${taskA}/logs?level=error`, a.token);
    expect(forTask.body.data.list).toEqual([expect.objectContaining({ id: own.id, message: 'boom', details: { stack: 'x' }, device_id: a.deviceId })]);
    // B sees none of A's logs.
    expect((await sys.api.get(`/logs?device_id=${a.deviceId}`, b.token)).body.data.total).toBe(0);
  });

  it('GET /logs filters by level (one or a list), category, task, time and text', async () => {
    const u = await newUser();
    const t = await addTask(u, 'running', new Date());
    const em = sys.orm.em.fork();
    const day = 24 * 3600 * 1000;
    const now = Date.now();
    const rows: [string, string, string, number, string | null][] = [
      ['debug', 'system', 'booting 100% ready', 3 * day, null],
      ['info', 'task', 'step one_done', 2 * day, t],
      ['warn', 'device', 'low disk', day, null],
      ['error', 'error', 'crashed with 100 errors', 0, t],
    ];
    for (const [level, category, message, ago, taskId] of rows) {
      em.create(Log, { id: randomUUID(), userId: u.userId, taskId, deviceId: null, level: level as never, category: category as never, message, details: null, createdAt: new Date(now - ago) });
    }
    await em.flush();
    const messages = async (qs: string) => {
      const res = await sys.api.get(`/logs?${qs}`, u.token);
      expect(res.status).toBe(200);
      return (res.body.data.list as { message: string }[]).map((l) => l.message);
    };
    expect(await messages('')).toEqual(['crashed with 100 errors', 'low disk', 'step one_done', 'booting 100% ready']);
    expect(await messages('level=warn')).toEqual(['low disk']);
    expect(await messages('level=debug,error')).toEqual(['crashed with 100 errors', 'booting 100% ready']);
    expect(await messages('category=task')).toEqual(['step one_done']);
    expect(await messages(`task_id=${t}`)).toEqual(['crashed with 100 errors', 'step one_done']);
    const iso = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
    expect(await messages(`from=${iso(now - 2.5 * day)}&to=${iso(now - 0.5 * day)}`)).toEqual(['low disk', 'step one_done']);
    // q is a substring, case-insensitive, with % and _ taken literally.
    expect(await messages('q=DISK')).toEqual(['low disk']);
    expect(await messages(`q=${encodeURIComponent('100%')}`)).toEqual(['booting 100% ready']);
    expect(await messages('q=one_')).toEqual(['step one_done']);
    expect(await messages('q=w_t')).toEqual([]); // unescaped, `_` would match "wit"
    expect(await messages(`task_id=${t}&level=info,warn`)).toEqual(['step one_done']);

    expectInvalid(await sys.api.get('/logs?level=info,loud', u.token), 'level');
    expectInvalid(await sys.api.get('/logs?level=', u.token), 'level');
    expectInvalid(await sys.api.get('/logs?category=nope', u.token), 'category');
    expectInvalid(await sys.api.get('/logs?from=yesterday', u.token), 'from');
    expectInvalid(await sys.api.get('/logs?task_id=123', u.token), 'task_id');
    expectInvalid(await sys.api.get('/logs?page_size=101', u.token), 'page_size');
    expectInvalid(await sys.api.get('/logs?q=%00', u.token), 'q');
    expectInvalid(await sys.api.get('/logs?color=red', u.token), '(root)');
    expectInvalid(await sys.api.get('/logs?cursor=bm9wZQ', u.token), 'cursor');
    expectInvalid(await sys.api.get(`/tasks/${t}/logs?task_id=${t}`, u.token), '(root)');
  });

  it('cursor pagination walks every row exactly once, newest first, ties broken by id', async () => {
    const u = await newUser();
    const ids = new Set<string>();
    for (let i = 0; i < 14; i++) {
      const res = await sys.api.post('/logs', { level: 'info', message: `log ${i}` }, u.token);
      expect(res.status).toBe(201);
      ids.add(res.body.data.log.id);
    }
    // Rows sharing one timestamp: only the id orders them.
    const em = sys.orm.em.fork();
    const same = new Date(Date.now() - 60_000);
    for (let i = 0; i < 9; i++) {
      const id = randomUUID();
      ids.add(id);
      em.create(Log, { id, userId: u.userId, taskId: null, deviceId: null, level: 'debug', category: 'system', message: `same ${i}`, details: null, createdAt: same });
    }
    await em.flush();

    const seen: { id: string; created_at: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: Reply = await sys.api.get(`/logs?page_size=5${cursor ? `&cursor=${cursor}` : ''}`, u.token);
      expect(res.status).toBe(200);
      expect(res.body.data.total).toBe(23);
      seen.push(...res.body.data.list);
      cursor = res.body.data.next_cursor;
      pages++;
      expect(pages).toBeLessThan(10);
    } while (cursor);
    expect(pages).toBe(5);
    expect(seen.map((l) => l.id).sort()).toEqual([...ids].sort());
    const order = seen.map((l) => [l.created_at, l.id].join(' '));
    expect(order).toEqual([...order].sort().reverse());

    // page / page_size: the same order.
    const page2 = await sys.api.get('/logs?page=2&page_size=5', u.token);
    expect(page2.body.data).toMatchObject({ page: 2, page_size: 5, total: 23 });
    expect(page2.body.data.list.map((l: { id: string }) => l.id)).toEqual(seen.slice(5, 10).map((l) => l.id));
  });
});

// ---- files -------------------------------------------------------------------------------------

// A 1x1 PNG (signature, IHDR, IDAT, IEND).
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const ELF = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x3e, 0]), Buffer.alloc(200, 0x90)]);

interface Part {
  name: string;
  filename?: string;
  type?: string;
  data: Buffer | string;
  /** The whole Content-Disposition value, instead of one built from name and filename. */
  disposition?: string;
}

function multipart(parts: Part[]): { body: Buffer; contentType: string } {
  const boundary = `----jarvis-${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = p.disposition ?? `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`, 'utf8'));
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data, 'utf8'));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

async function reply(res: Response): Promise<Reply> {
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

async function upload(token: string | undefined, parts: Part[]): Promise<Reply> {
  const { body, contentType } = multipart(parts);
  return reply(await fetch(`${sys.url}/api/v1/files/upload`, {
    method: 'POST', body, headers: { 'Content-Type': contentType, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  }));
}

const uploadFile = (token: string, filename: string, data: Buffer | string, type = 'application/octet-stream') =>
  upload(token, [{ name: 'file', filename, type, data }]);

/**
 * What is kept for a user: the ids of files with bytes in PostgreSQL's file_chunks (read with
 * SQL, not through the store) and any scratch file left in DATA_DIR/uploads.
 */
async function stored(userId: string): Promise<string[]> {
  const rows = await sys.orm.em.fork().execute<{ id: string }[]>(
    "select distinct split_part(storage_key, '/', 3) as id from file_chunks where storage_key like ?", [`files/${userId}/%`],
  );
  const dir = join(dataDir, 'uploads', userId);
  return [...rows.map((r) => r.id), ...(existsSync(dir) ? readdirSync(dir) : [])].sort();
}

describe('files', () => {
  let a: TestUser;
  let b: TestUser;
  let pngId: string;

  beforeAll(async () => {
    a = await newUser();
    b = await newUser();
  });

  it('uploads a PNG (streamed, stored in PostgreSQL) and downloads it byte-identical with its type', async () => {
    const res = await uploadFile(a.token, 'pixel.png', PNG, 'application/octet-stream');
    expect(res.status).toBe(201);
    const file = res.body.data.file;
    expect(file).toMatchObject({
      name: 'pixel.png', content_type: 'image/png', size_bytes: PNG.length,
      sha256: createHash('sha256').update(PNG).digest('hex'),
    });
    pngId = file.id;
    expect(await stored(a.userId)).toEqual([file.id]);

    const meta = await sys.api.get(`/files/${file.id}`, a.token);
    expect(meta.status).toBe(200);
    expect(meta.body.data.file).toEqual(file);

    const dl = await fetch(`${sys.url}/api/v1/files/${file.id}/content`, { headers: { Authorization: `Bearer ${a.token}` } });
    expect(dl.status).toBe(200);
    expect(dl.headers.get('content-type')).toBe('image/png');
    expect(dl.headers.get('content-length')).toBe(String(PNG.length));
    expect(dl.headers.get('content-disposition')).toBe('attachment; filename="pixel.png"');
    expect(dl.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await dl.arrayBuffer()).equals(PNG)).toBe(true);
  });

  it('detects the type from the content, never from the name or the client', async () => {
    const cases: [string, Buffer | string, string][] = [
      ['notes.txt', 'hello\nworld\n', 'text/plain'],
      ['data.bin', '  \n{"a": [1, 2]}', 'application/json'],
      ['list.json', '[1,2,3]', 'application/json'],
      ['table.csv', 'a,b\n1,2\n', 'text/csv'],
      ['photo.txt', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(64, 1)]), 'image/jpeg'],
      ['anim', Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1'), 'image/gif'],
      ['img.webp', Buffer.concat([Buffer.from('RIFF'), Buffer.from([0x20, 0, 0, 0]), Buffer.from('WEBPVP8 ')]), 'image/webp'],
      ['doc.pdf', '%PDF-1.7\n%\xe2\xe3\n', 'application/pdf'],
      ['archive.zip', Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(40, 0)]), 'application/zip'],
      ['über résumé 2026.txt', `${'é'.repeat(400)}ü`, 'text/plain'],
    ];
    for (const [name, data, type] of cases) {
      const res = await uploadFile(a.token, name, data, 'image/png');
      expect([name, res.status, res.body.data?.file?.content_type]).toEqual([name, 201, type]);
    }
    const list = await sys.api.get('/files?page_size=100', a.token);
    const utf8 = list.body.data.list.find((f: { name: string }) => f.name === 'über résumé 2026.txt');
    expect(utf8).toBeDefined();
    const dl = await fetch(`${sys.url}/api/v1/files/${utf8.id}/content`, { headers: { Authorization: `Bearer ${a.token}` } });
    expect(dl.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(dl.headers.get('content-disposition')).toBe(
      `attachment; filename="_ber r_sum_ 2026.txt"; filename*=UTF-8''${encodeURIComponent('über résumé 2026.txt')}`,
    );
    expect(await dl.text()).toBe(`${'é'.repeat(400)}ü`);
    // Characters encodeURIComponent leaves alone but RFC 8187 does not allow are escaped too.
    const cjk = await uploadFile(a.token, '日本語 (memo).txt', 'x', 'text/plain');
    expect(cjk.status).toBe(201);
    const cjkDl = await fetch(`${sys.url}/api/v1/files/${cjk.body.data.file.id}/content`, { headers: { Authorization: `Bearer ${a.token}` } });
    expect(cjkDl.headers.get('content-disposition')).toBe(
      "attachment; filename=\"___ (memo).txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E%20%28memo%29.txt",
    );
  });

  it('refuses other types with 415, whatever the name says, and leaves nothing on disk', async () => {
    const before = await stored(a.userId);
    const cases: [string, Buffer | string][] = [
      ['evil.png', ELF],
      ['setup.exe.png', Buffer.concat([Buffer.from('MZ'), Buffer.from([0x90, 0, 3, 0]), Buffer.alloc(100, 0)])],
      ['latin1.txt', Buffer.from('caf\xe9 au lait', 'latin1')],
      // Text at first, then a NUL or broken UTF-8 past the first chunk: refused too.
      ['late-nul.txt', Buffer.concat([Buffer.from('a'.repeat(4000)), Buffer.from([0]), Buffer.from('b')])],
      ['late-bad.csv', Buffer.concat([Buffer.from('a,b\n'.repeat(1000)), Buffer.from([0xc3, 0x28])])],
      ['cut.txt', Buffer.concat([Buffer.from('x'.repeat(600)), Buffer.from([0xe2, 0x82])])],
    ];
    for (const [name, data] of cases) {
      const res = await uploadFile(a.token, name, data, 'image/png');
      expect([name, res.status, res.body.code]).toEqual([name, 415, 1001]);
    }
    expect(await stored(a.userId)).toEqual(before);
  });

  it('over the size limit: 413, and nothing on disk (declared, streamed, or chunked)', async () => {
    const u = await newUser();
    // Just over the limit (within the multipart slack): read, counted, stopped.
    const over = await uploadFile(u.token, 'big.txt', 'x'.repeat(FILE_MAX + 1));
    expect([over.status, over.body.code]).toEqual([413, 1001]);
    expect(over.body.message).toContain(`${FILE_MAX} byte`);
    // Far over: refused from its Content-Length.
    const far = await uploadFile(u.token, 'huge.txt', 'x'.repeat(FILE_MAX * 8));
    expect([far.status, far.body.code]).toEqual([413, 1001]);
    // Chunked (no Content-Length): stopped as soon as the limit is passed.
    const boundary = `----jarvis-${randomUUID()}`;
    const chunk = Buffer.alloc(4 * KiB, 'y');
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="stream.txt"\r\n\r\n`));
      },
      pull(c) {
        if (sent >= FILE_MAX * 4) {
          c.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
          return c.close();
        }
        sent += chunk.length;
        c.enqueue(chunk);
      },
    });
    const chunked = await reply(await fetch(`${sys.url}/api/v1/files/upload`, {
      method: 'POST', body: stream, duplex: 'half',
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, Authorization: `Bearer ${u.token}` },
    } as RequestInit));
    expect([chunked.status, chunked.body.code]).toEqual([413, 1001]);
    expect(await stored(u.userId)).toEqual([]);
    // Exactly at the limit is fine.
    const exact = await uploadFile(u.token, 'exact.txt', 'z'.repeat(FILE_MAX));
    expect([exact.status, exact.body.data.file.size_bytes]).toEqual([201, FILE_MAX]);
    expect(await stored(u.userId)).toEqual([exact.body.data.file.id]);
  });

  it('a client that hangs up mid-upload leaves nothing behind', async () => {
    const u = await newUser();
    const boundary = `----jarvis-${randomUUID()}`;
    const url = new URL(`${sys.url}/api/v1/files/upload`);
    const req = request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': String(FILE_MAX), Authorization: `Bearer ${u.token}` },
    });
    req.on('error', () => undefined);
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.txt"\r\n\r\n${'h'.repeat(2000)}`);
    // The temporary file exists while the upload runs...
    await eventually(async () => (await stored(u.userId)).some((f) => f.endsWith('.part')), 5000, 'the temporary file');
    req.destroy();
    // ...and is gone once the client has hung up.
    await eventually(async () => (await stored(u.userId)).length === 0, 5000, 'cleanup');
    expect((await sys.api.get('/files', u.token)).body.data.total).toBe(0);
  });

  it('over the per-user quota: 413 with a clear message; deleting makes room', async () => {
    const u = await newUser();
    const size = 30 * KiB;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await uploadFile(u.token, `part${i}.txt`, String(i).repeat(size));
      expect(res.status).toBe(201);
      ids.push(res.body.data.file.id);
    }
    const over = await uploadFile(u.token, 'part3.txt', '3'.repeat(size));
    expect([over.status, over.body.code]).toEqual([413, 1001]);
    expect(over.body.message).toMatch(/quota/);
    expect(over.body.message).toContain(`${3 * size} of ${QUOTA} bytes`);
    expect(await stored(u.userId)).toEqual([...ids].sort());
    // Another user's quota is their own.
    expect((await uploadFile(b.token, 'mine.txt', '3'.repeat(size))).status).toBe(201);

    expect((await sys.api.del(`/files/${ids[0]}`, u.token)).status).toBe(200);
    expect((await uploadFile(u.token, 'part3.txt', '3'.repeat(size))).status).toBe(201);
  });

  it('bad uploads: not multipart (415), no file part, a wrong part name, two files (400), no token (401)', async () => {
    const json = await sys.api.post('/files/upload', { file: 'x' }, a.token);
    expect([json.status, json.body.code]).toEqual([415, 1001]);
    const text = await reply(await fetch(`${sys.url}/api/v1/files/upload`, {
      method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/plain', Authorization: `Bearer ${a.token}` },
    }));
    expect([text.status, text.body.code]).toEqual([415, 1001]);
    const noBoundary = await reply(await fetch(`${sys.url}/api/v1/files/upload`, {
      method: 'POST', body: 'hello', headers: { 'Content-Type': 'multipart/form-data', Authorization: `Bearer ${a.token}` },
    }));
    expect([noBoundary.status, noBoundary.body.code]).toEqual([415, 1001]);
    expectInvalid(await upload(a.token, [{ name: 'note', data: 'just a field' }]), 'file');
    expectInvalid(await upload(a.token, [{ name: 'upload', filename: 'a.txt', data: 'x' }]), 'file');
    expectInvalid(await upload(a.token, [
      { name: 'file', filename: 'a.txt', data: 'x' }, { name: 'file', filename: 'b.txt', data: 'y' },
    ]), 'file');
    const { body, contentType } = multipart([{ name: 'file', filename: 'a.txt', data: 'x' }]);
    const truncated = await reply(await fetch(`${sys.url}/api/v1/files/upload`, {
      method: 'POST', body: body.subarray(0, body.length - 20), headers: { 'Content-Type': contentType, Authorization: `Bearer ${a.token}` },
    }));
    expectInvalid(truncated, '(root)');
    // Control characters in a part header are malformed.
    expectInvalid(await uploadFile(a.token, 'a\u0007.txt', 'x'), '(root)');
    expectUnauthenticated(await uploadFile(undefined as unknown as string, 'a.txt', 'x'));
    expect((await stored(a.userId)).filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('sanitizes the name: no path, no control characters, at most 255 characters', async () => {
    // RFC 8187 extended parameter: a path and a control character, percent-encoded.
    const res = await upload(a.token, [{ name: 'file', data: 'root:x:0:0', disposition: `form-data; name="file"; filename*=UTF-8''..%2F..%2Fetc%2Fpass%07wd` }]);
    expect(res.status).toBe(201);
    expect(res.body.data.file.name).toBe('passwd');
    expect(await stored(a.userId)).toContain(res.body.data.file.id);
    expect(sanitizeFilename('C:\\Users\\me\\..\\a<b>.txt')).toBe('a_b_.txt');
    expect(sanitizeFilename('\u202eexe.txt')).toBe('exe.txt');
    expect(sanitizeFilename('...')).toBe('file');
    expect(sanitizeFilename(undefined)).toBe('file');
    const long = sanitizeFilename(`${'ü'.repeat(300)}.pdf`);
    expect(Array.from(long).length).toBe(255);
    expect(long.endsWith('.pdf')).toBe(true);
  });

  it('GET /files lists my files, newest first, paged', async () => {
    const all = await sys.api.get('/files?page_size=100', a.token);
    expect(all.status).toBe(200);
    const total = all.body.data.total;
    expect(total).toBe(all.body.data.list.length);
    expect(total).toBeGreaterThan(5);
    const created = all.body.data.list.map((f: { created_at: string }) => f.created_at);
    expect(created).toEqual([...created].sort().reverse());
    const page = await sys.api.get('/files?page=2&page_size=3', a.token);
    expect(page.body.data).toMatchObject({ page: 2, page_size: 3, total });
    expect(page.body.data.list).toEqual(all.body.data.list.slice(3, 6));
    expect((await sys.api.get('/files', b.token)).body.data.list.every((f: { id: string }) => f.id !== pngId)).toBe(true);
    expectInvalid(await sys.api.get('/files?page=0', a.token), 'page');
    expectInvalid(await sys.api.get('/files?q=x', a.token), '(root)');
  });

  it('another user\'s file is a 404 everywhere; bad ids are 400; no token is 401', async () => {
    expectNotFound(await sys.api.get(`/files/${pngId}`, b.token));
    expectNotFound(await sys.api.get(`/files/${pngId}/content`, b.token));
    expectNotFound(await sys.api.del(`/files/${pngId}`, b.token));
    expectNotFound(await sys.api.get(`/files/${randomUUID()}`, a.token));
    expectInvalid(await sys.api.get('/files/123', a.token), 'id');
    expectInvalid(await sys.api.get('/files/123/content', a.token), 'id');
    expectInvalid(await sys.api.del('/files/123', a.token), 'id');
    expectUnauthenticated(await sys.api.get('/files'));
    expectUnauthenticated(await sys.api.get(`/files/${pngId}`));
    expectUnauthenticated(await sys.api.get(`/files/${pngId}/content`));
    expectUnauthenticated(await sys.api.del(`/files/${pngId}`));
    expect(await stored(a.userId)).toContain(pngId);
  });

  it('DELETE /files/:id removes the row and the bytes', async () => {
    const res = await sys.api.del(`/files/${pngId}`, a.token);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ deleted: true });
    expect(await stored(a.userId)).not.toContain(pngId);
    expectNotFound(await sys.api.get(`/files/${pngId}`, a.token));
    expectNotFound(await sys.api.get(`/files/${pngId}/content`, a.token));
    expectNotFound(await sys.api.del(`/files/${pngId}`, a.token));
  });
});

// ---- stats -------------------------------------------------------------------------------------

describe('stats', () => {
  const DAY = 24 * 3600 * 1000;

  it('counts today and the last 7 days from my tasks, in SQL', async () => {
    const u = await newUser();
    const other = await newUser();
    const now = Date.now();
    const midnight = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
    // Today (a moment ago, or just after midnight when the day has barely started).
    const today = () => new Date(Math.max(midnight + 1000, now - 60_000));
    await addTask(u, 'completed', today(), 1000);
    await addTask(u, 'completed', today(), 3000);
    await addTask(u, 'failed', today(), 500);
    await addTask(u, 'running', today());
    await addTask(u, 'pending', today());
    await addTask(u, 'completed', new Date(midnight - 2 * DAY + 12 * 3600 * 1000), 5000);
    await addTask(u, 'cancelled', new Date(midnight - 2 * DAY + 13 * 3600 * 1000), 10);
    await addTask(u, 'failed', new Date(midnight - 6 * DAY + 3600 * 1000), 10);
    await addTask(u, 'completed', new Date(midnight - 8 * DAY), 99_999); // outside the 7 days
    await addTask(other, 'completed', today(), 7); // someone else's
    // Devices: one offline (from newUser), one online and seen just now, one "online" but stale.
    const em = sys.orm.em.fork();
    for (const [name, online, seen] of [['fresh', true, new Date()], ['stale', true, new Date(now - 3600 * 1000)]] as const) {
      em.create(Device, {
        id: randomUUID(), userId: u.userId, deviceId: `pc-${name}-${randomUUID().slice(0, 6)}`, deviceName: name, osType: null, osVersion: null,
        appVersion: null, tokenHash: createHash('sha256').update(randomUUID()).digest('hex'), capabilities: null, isOnline: online,
        nodeId: 'n', connectionId: randomUUID(), connectionStartedAt: seen, lastOnlineAt: seen,
      });
    }
    await em.flush();

    const res = await sys.api.get('/stats/overview', u.token);
    expect(res.status).toBe(200);
    const s = res.body.data;
    expect(s.tz).toBe('UTC');
    expect(s.today).toEqual({
      since: new Date(midnight).toISOString(),
      total: 5,
      by_status: { pending: 1, running: 1, paused: 0, completed: 2, failed: 1, cancelled: 0 },
      finished: 3,
      success_rate: 0.6667,
      avg_duration_ms: 2000,
    });
    expect(s.last_7_days).toEqual({
      since: new Date(midnight - 6 * DAY).toISOString(),
      total: 8,
      by_status: { pending: 1, running: 1, paused: 0, completed: 3, failed: 2, cancelled: 1 },
      finished: 6,
      success_rate: 0.5,
      avg_duration_ms: 3000,
    });
    expect(s.devices).toEqual({ online: 1, total: 3 });
    const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    expect(s.days).toEqual([6, 5, 4, 3, 2, 1, 0].map((n) => ({
      date: date(midnight - n * DAY),
      total: n === 0 ? 5 : n === 2 ? 2 : n === 6 ? 1 : 0,
      completed: n === 0 ? 2 : n === 2 ? 1 : 0,
      failed: n === 0 ? 1 : n === 6 ? 1 : 0,
    })));

    // A user with nothing: zeros, and null where nothing finished.
    const empty = (await sys.api.get('/stats/overview', (await signup(sys.api)).token)).body.data;
    expect(empty.today).toMatchObject({ total: 0, finished: 0, success_rate: null, avg_duration_ms: null });
    expect(empty.devices).toEqual({ online: 0, total: 0 });
    expect(empty.days.map((d: { total: number }) => d.total)).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it('days follow the tz query parameter (an IANA zone)', async () => {
    const u = await newUser();
    await addTask(u, 'completed', new Date(Date.now() - 1000), 10);
    for (const tz of ['Europe/Paris', 'Pacific/Kiritimati', 'America/Los_Angeles', 'Etc/GMT+5']) {
      const res = await sys.api.get(`/stats/overview?tz=${encodeURIComponent(tz)}`, u.token);
      expect(res.status).toBe(200);
      const s = res.body.data;
      expect(s.tz).toBe(tz);
      // `today` starts at local midnight there, and the last day is today's local date.
      const local = (iso: string, opts: Intl.DateTimeFormatOptions) => new Intl.DateTimeFormat('en-CA', { timeZone: tz, ...opts }).format(new Date(iso));
      expect(local(s.today.since, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })).toBe('00:00');
      expect(s.days).toHaveLength(7);
      expect(s.days[6].date).toBe(local(new Date().toISOString(), { year: 'numeric', month: '2-digit', day: '2-digit' }));
      expect(s.today.total + s.days.slice(0, 6).reduce((n: number, d: { total: number }) => n + d.total, 0)).toBe(1);
    }
    expectInvalid(await sys.api.get('/stats/overview?tz=Mars%2FOlympus', u.token), 'tz');
    expectInvalid(await sys.api.get('/stats/overview?tz=%2B02%3A00', u.token), 'tz');
    expectInvalid(await sys.api.get(`/stats/overview?tz=${'A'.repeat(65)}`, u.token), 'tz');
    expectInvalid(await sys.api.get('/stats/overview?days=30', u.token), '(root)');
    expectUnauthenticated(await sys.api.get('/stats/overview'));
  });
});
