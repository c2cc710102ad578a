// The user's schedules: each row mirrors one Temporal Schedule (src/domain/schedules.ts).
import type { EntityManager } from '@mikro-orm/postgresql';
import { Device, Schedule, Workflow } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { insertWithinLimit } from './quotas.ts';

/** Throws 404 unless the workflow and the device both are the user's. */
export async function checkTargets(repos: OwnedRepos, workflowId: string, deviceId: string): Promise<void> {
  await repos.get(Workflow, workflowId, 'workflow');
  await repos.get(Device, deviceId, 'device');
}

/** Inserts the user's schedule unless the user already holds `max` schedules (throws; see quotas.ts). */
export async function insert(repos: OwnedRepos, schedule: Omit<Schedule, 'userId' | 'createdAt' | 'updatedAt'>, max: number): Promise<Schedule> {
  return insertWithinLimit(repos, Schedule, schedule, 'schedules', max);
}

export function get(repos: OwnedRepos, id: string): Promise<Schedule> {
  return repos.get(Schedule, id, 'schedule');
}

/** The user's schedules, newest first. */
export function page(repos: OwnedRepos, offset: number, limit: number) {
  return repos.findAndCount(Schedule, {}, { orderBy: { createdAt: 'desc', id: 'desc' }, offset, limit });
}

/** Writes the changes made to schedules read through `repos`. */
export async function save(repos: OwnedRepos): Promise<void> {
  await repos.em.flush();
}

export async function remove(repos: OwnedRepos, schedule: Schedule): Promise<void> {
  await repos.em.remove(schedule).flush();
}

/** Removes the user's schedule by id (one whose Temporal Schedule could not be created). */
export async function removeById(repos: OwnedRepos, id: string): Promise<void> {
  await repos.em.nativeDelete(Schedule, { id, userId: repos.userId });
}

/** The user's schedules that run on the device or run the workflow. */
export function ofTarget(repos: OwnedRepos, target: { deviceId?: string; workflowId?: string }): Promise<Schedule[]> {
  if (!target.deviceId && !target.workflowId) return Promise.resolve([]);
  return repos.find(Schedule, {
    ...(target.deviceId ? { deviceId: target.deviceId } : {}),
    ...(target.workflowId ? { workflowId: target.workflowId } : {}),
  });
}

/** Which of these schedule ids have a row, whoever's (the orphan sweep). */
export async function existing(em: EntityManager, ids: readonly string[]): Promise<string[]> {
  const rows = await em.find(Schedule, { id: { $in: [...ids] } }, { fields: ['id'] });
  return rows.map((r) => r.id);
}

/** A schedule by id, whoever's: for its own firing, which then acts as the schedule's user. */
export function byId(em: EntityManager, id: string): Promise<Schedule | null> {
  return em.findOne(Schedule, { id });
}
