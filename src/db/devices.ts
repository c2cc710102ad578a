// Devices: the user's registered PCs, and their presence (written by the API node that holds a
// device's socket; an older connection's late write never wins over a newer one).
import type { EntityManager } from '@mikro-orm/postgresql';
import { PRESENCE_CHANNEL, READINGS_CHANNEL } from './channels.ts';
import { Device, type DeviceReadings } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { insertWithinLimit } from './quotas.ts';
import { dbOf, jsonb, raw, sql, type Sql } from './sql.ts';

/** Whether the user already registered a machine under this client id. */
export async function isRegistered(repos: OwnedRepos, clientDeviceId: string): Promise<boolean> {
  return (await repos.count(Device, { deviceId: clientDeviceId })) > 0;
}

/** Inserts the user's device unless the user already holds `max` devices (throws; see quotas.ts). */
export async function insert(repos: OwnedRepos, device: Omit<Device, 'userId' | 'createdAt' | 'updatedAt' | 'nodeId' | 'connectionId' | 'connectionStartedAt' | 'lastOnlineAt' | 'isBusy' | 'status' | 'statusAt'>, max: number): Promise<Device> {
  return insertWithinLimit(repos, Device, device, 'devices', max);
}

export function get(repos: OwnedRepos, id: string): Promise<Device> {
  return repos.get(Device, id, 'device');
}

export function list(repos: OwnedRepos): Promise<Device[]> {
  return repos.find(Device, {}, { orderBy: { createdAt: 'asc' } });
}

/** Writes the changes made to the user's devices read through `repos`. */
export async function save(repos: OwnedRepos): Promise<void> {
  await repos.em.flush();
}

export async function remove(repos: OwnedRepos, device: Device): Promise<void> {
  await repos.em.remove(device).flush();
}

/** The device whose token hashes to `tokenHash` (whoever's: the token is the credential). */
export function byTokenHash(em: EntityManager, tokenHash: string): Promise<Device | null> {
  return em.findOne(Device, { tokenHash });
}

/**
 * The presence notice of the rows `u` (a CTE returning the device's `id, user_id, is_online,
 * is_busy`), when `changed`: delivered on commit, in commit order, to every node's user feeds.
 */
function notifyPresence(change: Sql, changed: Sql): Sql {
  return sql`select u.id, case when ${changed} then pg_notify(${PRESENCE_CHANNEL}, json_build_object(
      'user_id', u.user_id, 'device_id', u.id, 'change', ${change}, 'is_online', u.is_online, 'is_busy', u.is_busy,
      'at', floor(extract(epoch from now()) * 1000))::text) end as notified
    from u`;
}

/**
 * This node holds the device's socket now, unless a newer connection already wrote its presence.
 * Busy belongs to a connection: a new one starts idle until its device says otherwise.
 */
export async function markOnline(em: EntityManager, deviceId: string, nodeId: string, connectionId: string, startedAt: Date): Promise<boolean> {
  // The newer connection wins (later start, ties by connection id): isNewerConnection's order,
  // so every node and this row agree which of a device's connections is current. The row is
  // locked first so that "was it online" is the state this update replaces.
  const rows = await (await dbOf(em)).all(sql`with old as (select id, is_online, is_busy from devices where id = ${deviceId} for update),
    u as (update devices d set is_online = true, node_id = ${nodeId}, session_id = ${connectionId},
        session_started_at = ${startedAt}, last_online_at = now(), is_busy = false
      from old
      where d.id = old.id and (d.session_started_at is null or d.session_started_at < ${startedAt}
        or (d.session_started_at = ${startedAt} and d.session_id <= ${connectionId}))
      returning d.id, d.user_id, d.is_online, d.is_busy, old.is_online as was_online, old.is_busy as was_busy)
    ${notifyPresence(raw("'online'"), raw('not u.was_online or u.was_busy'))}`);
  return rows.length > 0;
}

export async function touchPresence(em: EntityManager, deviceId: string, connectionId: string): Promise<void> {
  await em.nativeUpdate(Device, { id: deviceId, connectionId }, { lastOnlineAt: new Date(), isOnline: true });
}

/** Offline only if this connection is still the device's current one. */
export async function markOffline(em: EntityManager, deviceId: string, connectionId: string): Promise<boolean> {
  const rows = await (await dbOf(em)).all(sql`with u as (update devices set is_online = false, is_busy = false, node_id = null, session_id = null
      where id = ${deviceId} and session_id = ${connectionId} returning id, user_id, is_online, is_busy)
    ${notifyPresence(raw("'offline'"), raw('true'))}`);
  return rows.length > 0;
}

/** Every device this node held goes offline (the node is stopping). */
export async function releaseNode(em: EntityManager, nodeId: string): Promise<void> {
  await (await dbOf(em)).all(sql`with u as (update devices set is_online = false, is_busy = false, node_id = null, session_id = null
      where node_id = ${nodeId} returning id, user_id, is_online, is_busy)
    ${notifyPresence(raw("'offline'"), raw('true'))}`);
}

/** What a `device/status` frame says, in the row's terms. */
export interface StatusReport {
  busy?: boolean;
  appVersion?: string;
  osType?: string;
  osVersion?: string;
  /** Merged into the stored readings field by field; empty keeps them and their time. */
  readings: DeviceReadings;
}

/**
 * Stores what the device's current connection says about itself (an older connection's late
 * frame changes nothing); a change of busy is announced, and so is a change of the readings. False when `connectionId` is not current.
 */
export async function recordStatus(em: EntityManager, deviceId: string, connectionId: string, r: StatusReport): Promise<boolean> {
  const hasReadings = Object.keys(r.readings).length > 0;
  const rows = await (await dbOf(em)).all(sql`with old as (select id, is_busy, status from devices where id = ${deviceId} and session_id = ${connectionId} for update),
    u as (update devices d set
        is_busy = coalesce(${r.busy ?? null}::boolean, d.is_busy),
        app_version = coalesce(${r.appVersion ?? null}::varchar, d.app_version),
        os_type = coalesce(${r.osType ?? null}::varchar, d.os_type),
        os_version = coalesce(${r.osVersion ?? null}::varchar, d.os_version),
        status = ${hasReadings ? sql`coalesce(d.status, '{}'::jsonb) || ${jsonb(r.readings)}` : raw('d.status')},
        status_at = ${hasReadings ? raw('now()') : raw('d.status_at')},
        updated_at = now()
      from old
      where d.id = old.id and d.session_id = ${connectionId}
      returning d.id, d.user_id, d.is_online, d.is_busy, old.is_busy as was_busy, d.status, old.status as was_status)
    ${notifyPresence(raw("case when u.is_busy then 'busy' else 'idle' end"), raw('u.is_busy is distinct from u.was_busy'))}
    union all
    select u.id, case when u.status is distinct from u.was_status then pg_notify(${READINGS_CHANNEL}, json_build_object(
        'user_id', u.user_id, 'device_id', u.id, 'status', u.status, 'at', floor(extract(epoch from now()) * 1000))::text) end
      from u`);
  return rows.length > 0;
}

/** A device by id, whoever's: for the engine (a run already knows its device is its user's). */
export function byId(em: EntityManager, id: string): Promise<Device | null> {
  return em.findOne(Device, { id });
}
