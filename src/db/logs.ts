// Logs of users and devices, stored per user (src/domain/logs.ts decides what is stored).
import type { EntityManager } from '@mikro-orm/postgresql';
import { Log, Task } from './entities.ts';
import type { UserScope } from './scope.ts';

/** Stores one of the user's logs at once. `taskId` must be the user's (see `isUsersTask`). */
export async function insert(em: EntityManager, scope: UserScope, log: Omit<Log, 'userId'>): Promise<Log> {
  const row = em.create(Log, { ...log, userId: scope.userId });
  await em.persist(row).flush();
  return row;
}

/** Whether the task exists and is the user's. */
export async function isUsersTask(em: EntityManager, scope: UserScope, taskId: string): Promise<boolean> {
  return (await em.count(Task, { id: taskId, userId: scope.userId })) > 0;
}
