// Devices: the user's registered PCs, and their presence (written by the API node that holds a
// device's socket; an older connection's late write never wins over a newer one).
import type { EntityManager } from '@mikro-orm/postgresql';
import { Device } from './entities.ts';
import type { OwnedRepos } from './owned.ts';
import { insertWithinLimit } from './quotas.ts';

/** Whether the user already registered a machine under this client id. */
export async function isRegistered(repos: OwnedRepos, clientDeviceId: string): Promise<boolean> {
  return (await repos.count(Device, { deviceId: clientDeviceId })) > 0;
}

/** Registers one of the user's devices (written at once). */
/** Inserts the user's device unless the user already holds `max` devices (throws; see quotas.ts). */
export async function insert(repos: OwnedRepos, device: Omit<Device, 'userId' | 'createdAt' | 'updatedAt' | 'nodeId' | 'connectionId' | 'connectionStartedAt' | 'lastOnlineAt'>, max: number): Promise<Device> {
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

/** This node holds the device's socket now, unless a newer connection already wrote its presence. */
export async function markOnline(em: EntityManager, deviceId: string, nodeId: string, connectionId: string, startedAt: Date): Promise<boolean> {
  const n = await em.nativeUpdate(
    Device,
    // The newer connection wins (later start, ties by connection id): isNewerConnection's order,
    // so every node and this row agree which of a device's connections is current.
    {
      id: deviceId,
      $or: [
        { connectionStartedAt: null },
        { connectionStartedAt: { $lt: startedAt } },
        { connectionStartedAt: startedAt, connectionId: { $lte: connectionId } },
      ],
    },
    { isOnline: true, nodeId, connectionId, connectionStartedAt: startedAt, lastOnlineAt: new Date() },
  );
  return n > 0;
}

export async function touchPresence(em: EntityManager, deviceId: string, connectionId: string): Promise<void> {
  await em.nativeUpdate(Device, { id: deviceId, connectionId }, { lastOnlineAt: new Date(), isOnline: true });
}

/** Offline only if this connection is still the device's current one. */
export async function markOffline(em: EntityManager, deviceId: string, connectionId: string): Promise<boolean> {
  return (await em.nativeUpdate(Device, { id: deviceId, connectionId }, { isOnline: false, nodeId: null, connectionId: null })) > 0;
}

/** Every device this node held goes offline (the node is stopping). */
export async function releaseNode(em: EntityManager, nodeId: string): Promise<void> {
  await em.nativeUpdate(Device, { nodeId }, { isOnline: false, nodeId: null, connectionId: null });
}

/** A device by id, whoever's: for the engine (a run already knows its device is its user's). */
export function byId(em: EntityManager, id: string): Promise<Device | null> {
  return em.findOne(Device, { id });
}
