// Logs of users and devices, stored per user (src/domain/logs.ts decides what is stored).
import type { EntityManager } from '@mikro-orm/postgresql';
import { Log, Task } from './entities.ts';
import { createdBetween, escapeLike } from './filters.ts';
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

export interface LogFilter {
  /** Any of these levels. */
  levels?: readonly string[];
  category?: string;
  taskId?: string;
  deviceId?: string;
  from?: Date;
  to?: Date;
  /** Part of the message, any case. */
  messageLike?: string;
}

/** The condition (for the ORM, under the user's scope) that selects the logs `filter` asks for. */
export function where(filter: LogFilter): Record<string, unknown> {
  const w: Record<string, unknown> = {};
  if (filter.levels) w.level = { $in: [...new Set(filter.levels)] };
  if (filter.category) w.category = filter.category;
  if (filter.taskId) w.taskId = filter.taskId;
  if (filter.deviceId) w.deviceId = filter.deviceId;
  if (filter.from || filter.to) w.createdAt = createdBetween(filter.from, filter.to);
  if (filter.messageLike) w.message = { $ilike: `%${escapeLike(filter.messageLike)}%` };
  return w;
}
