// PC devices: registration with a device token (shown once, stored as a hash), presence.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Device } from '../db/entities.ts';
import type { OwnedRepos } from '../db/owned.ts';
import { AppError, ErrorCode } from '../errors.ts';
import { hashToken, newOpaqueToken } from './tokens.ts';

export interface DeviceInput {
  device_id: string;
  device_name: string;
  os_type?: string;
  os_version?: string;
  app_version?: string;
  capabilities?: string[];
}

export async function registerDevice(repos: OwnedRepos, input: DeviceInput) {
  const exists = await repos.count(Device, { deviceId: input.device_id });
  if (exists) {
    throw new AppError(409, ErrorCode.InvalidParams, 'device_id already registered for this user',
      { errors: [{ path: 'device_id', message: 'already registered' }] });
  }
  const { token, hash } = newOpaqueToken('dev_');
  const device = repos.create(Device, {
    id: crypto.randomUUID(),
    deviceId: input.device_id,
    deviceName: input.device_name,
    osType: input.os_type ?? null,
    osVersion: input.os_version ?? null,
    appVersion: input.app_version ?? null,
    capabilities: input.capabilities ?? [],
    tokenHash: hash,
    isOnline: false,
  });
  await repos.em.flush();
  return { device, token };
}

/** A new token for the device; the old one stops working at once. */
export async function rotateDeviceToken(repos: OwnedRepos, id: string) {
  const device = await repos.get(Device, id, 'device');
  const { token, hash } = newOpaqueToken('dev_');
  device.tokenHash = hash;
  await repos.em.flush();
  return { device, token };
}

/** The device a device token belongs to, or null. */
export async function deviceForToken(em: EntityManager, token: string): Promise<Device | null> {
  if (!token.startsWith('dev_') || token.length > 200) return null;
  return em.findOne(Device, { tokenHash: hashToken(token) });
}

/**
 * Presence mirror: this node holds the device's socket now, unless a newer session (on any
 * node) already wrote its own presence. Returns whether this session is the current one.
 */
export async function markOnline(em: EntityManager, deviceId: string, nodeId: string, sessionId: string, startedAt: Date): Promise<boolean> {
  const n = await em.nativeUpdate(
    Device,
    // The newer session wins (later start, ties by session id): the order the gateways use.
    {
      id: deviceId,
      $or: [
        { sessionStartedAt: null },
        { sessionStartedAt: { $lt: startedAt } },
        { sessionStartedAt: startedAt, sessionId: { $lte: sessionId } },
      ],
    },
    { isOnline: true, nodeId, sessionId, sessionStartedAt: startedAt, lastOnlineAt: new Date() },
  );
  return n > 0;
}

/** Refreshes last_online_at while the socket lives (locateDevice treats stale presence as offline). */
export async function touchPresence(em: EntityManager, deviceId: string, sessionId: string): Promise<void> {
  await em.nativeUpdate(Device, { id: deviceId, sessionId }, { lastOnlineAt: new Date(), isOnline: true });
}

/** Marks offline only if this session is still the device's current one (a newer one may exist). */
export async function markOffline(em: EntityManager, deviceId: string, sessionId: string): Promise<boolean> {
  const n = await em.nativeUpdate(Device, { id: deviceId, sessionId }, { isOnline: false, nodeId: null, sessionId: null });
  return n > 0;
}
