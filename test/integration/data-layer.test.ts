// The owner scope of src/db: every function that reads or changes a user's rows answers only
// with that user's rows, whoever asks with whichever id.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Device, Session, StoredFile, Task, User, Workflow, WorkflowVersion } from '../../src/db/entities.ts';
import * as filesDb from '../../src/db/files.ts';
import { openOrm, type Orm } from '../../src/db/orm.ts';
import { OwnedRepos } from '../../src/db/owned.ts';
import * as sessionsDb from '../../src/db/sessions.ts';
import { dbOf, type Db } from '../../src/db/sql.ts';
import * as statsDb from '../../src/db/stats.ts';
import * as tasksDb from '../../src/db/tasks.ts';
import { testEnv } from '../helpers/env.ts';

let orm: Orm;
let db: Db;
const id = () => crypto.randomUUID();
const alice = { userId: id() };
const bob = { userId: id() };
const mine = { workflow: id(), version: id(), device: id(), task: id(), session: id(), file: id() };
const bobsDevice = id();
const repos = (who: { userId: string }) => new OwnedRepos(orm.em.fork(), who.userId, orm.em);

beforeAll(async () => {
  orm = await openOrm(testEnv.databaseUrl);
  db = await dbOf(orm);
  const em = orm.em.fork();
  for (const u of [alice, bob]) {
    em.create(User, { id: u.userId, email: `${u.userId}@example.test`, passwordHash: 'x', name: null });
  }
  await em.flush();
  const device = (deviceId: string, userId: string) =>
    em.create(Device, { id: deviceId, userId, deviceId: `pc-${deviceId}`, deviceName: 'pc', osType: null, osVersion: null,
      appVersion: null, tokenHash: deviceId.replace(/-/g, '').padEnd(64, '0'), capabilities: [], isOnline: false, nodeId: null,
      connectionId: null, connectionStartedAt: null, lastOnlineAt: null });
  device(mine.device, alice.userId);
  device(bobsDevice, bob.userId);
  em.create(Workflow, { id: mine.workflow, userId: alice.userId, name: 'w', description: null, category: null, tags: [], currentVersion: 1, isArchived: false });
  await em.flush();
  em.create(WorkflowVersion, { id: mine.version, workflowId: mine.workflow, version: 1, definition: {}, parameters: null });
  await em.flush();
  em.create(Task, {
    id: mine.task, userId: alice.userId, workflowId: mine.workflow, workflowVersionId: mine.version, deviceId: mine.device,
    status: 'completed', statusReason: null, priority: 'medium', parameters: {}, idempotencyKey: null,
    temporalWorkflowId: `task-${mine.task}`, temporalRunId: null, currentNode: null, progress: 100, result: null, error: null,
    lastSeq: 0, startedAt: null, finishedAt: null, durationMs: 1200,
  });
  em.create(Session, { id: mine.session, userId: alice.userId, client: null, revokedAt: null, revokedReason: null });
  em.create(StoredFile, { id: mine.file, userId: alice.userId, name: 'a.txt', contentType: 'text/plain', sizeBytes: 1234, sha256: '0'.repeat(64), storageKey: `files/${mine.file}` });
  await em.flush();
});

afterAll(async () => {
  await orm?.close();
});

describe('owner scope in src/db', () => {
  it('tasks: another user finds nothing and changes nothing', async () => {
    expect((await tasksDb.withSteps(repos(alice), mine.task))?.task.id).toBe(mine.task);
    expect(await tasksDb.withSteps(repos(bob), mine.task)).toBeNull();
    expect(await tasksDb.eventsAfter(repos(bob), mine.task, 0, 10)).toBeNull();
    expect(await tasksDb.eventsAfter(repos(alice), mine.task, 0, 10)).toEqual([]);
    await expect(tasksDb.get(repos(bob), mine.task)).rejects.toMatchObject({ status: 404 });
    await tasksDb.remove(repos(bob), mine.task);
    await (await dbOf(orm)).all(tasksDb.setRunId(repos(bob), mine.task, 'stolen'));
    const [row] = await orm.em.fork().getConnection().execute('select temporal_run_id from tasks where id = ?', [mine.task]);
    expect(row).toEqual({ temporal_run_id: null });
  });

  it('a submission reads only the user\'s workflow and device', async () => {
    expect(await tasksDb.submissionParts(repos(bob), mine.workflow, bobsDevice)).toBeNull();
    const parts = await tasksDb.submissionParts(repos(alice), mine.workflow, bobsDevice);
    expect(parts?.wf.id).toBe(mine.workflow);
    expect(parts?.device).toBeNull();
    expect(parts?.version?.id).toBe(mine.version);
    expect((await tasksDb.submissionParts(repos(alice), mine.workflow, mine.device))?.device?.id).toBe(mine.device);
  });

  it('sessions: open only for their own user, closed once revoked', async () => {
    expect(await sessionsDb.isOpen(db, alice, mine.session)).toBe(true);
    expect(await sessionsDb.isOpen(db, bob, mine.session)).toBe(false);
  });

  it('files and statistics count the user\'s rows only', async () => {
    expect(await filesDb.usedBytes(repos(alice))).toBe(1234);
    expect(await filesDb.usedBytes(repos(bob))).toBe(0);
    const total = async (who: { userId: string }) =>
      (await statsDb.windows(db, who, 'UTC', 60)).find((w) => w.win === 'last_7_days')!.total;
    expect(await total(alice)).toBe(1);
    expect(await total(bob)).toBe(0);
  });

  it('the monitors\' batched lookup answers only the asker\'s own tasks', async () => {
    expect(await tasksDb.statusesOwned(db, [{ taskId: mine.task, userId: alice.userId }, { taskId: id(), userId: alice.userId }]))
      .toEqual([{ id: mine.task, user_id: alice.userId, status: 'completed' }]);
    // Another user asking for the same task gets no row: the owner check is the query's.
    expect(await tasksDb.statusesOwned(db, [{ taskId: mine.task, userId: bob.userId }])).toEqual([]);
  });

  it('a revoked session is closed', async () => {
    await sessionsDb.revoke(db, mine.session, 'test');
    expect(await sessionsDb.isOpen(db, alice, mine.session)).toBe(false);
  });
});
