// PC devices: registration with a device token (shown once, stored as a hash), presence.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Device, DeviceReadings } from '../db/entities.ts';
import * as devicesDb from '../db/devices.ts';
import type { OwnedRepos } from '../db/owned.ts';
import { AppError, ErrorCode } from '../errors.ts';
import { hashToken, newOpaqueToken } from './tokens.ts';
import type { Client } from '@temporalio/client';
import { refusedOverLimit } from '../db/quotas.ts';
import { deleteSchedulesOf } from './schedules.ts';

export interface DeviceInput {
  device_id: string;
  device_name: string;
  os_type?: string;
  os_version?: string;
  app_version?: string;
  capabilities?: string[];
}

/** Registers a device of the user's; at most `maxDevices` per user (403 code 1003 past it). */
export async function registerDevice(repos: OwnedRepos, input: DeviceInput, maxDevices: number) {
  if (await devicesDb.isRegistered(repos, input.device_id)) {
    throw new AppError(409, ErrorCode.InvalidParams, 'device_id already registered for this user',
      { errors: [{ path: 'device_id', message: 'already registered' }] });
  }
  const { token, hash } = newOpaqueToken('dev_');
  const device = await devicesDb.insert(repos, {
    id: crypto.randomUUID(),
    deviceId: input.device_id,
    deviceName: input.device_name,
    osType: input.os_type ?? null,
    osVersion: input.os_version ?? null,
    appVersion: input.app_version ?? null,
    capabilities: input.capabilities ?? [],
    tokenHash: hash,
    isOnline: false,
  }, maxDevices).catch(refusedOverLimit('devices', maxDevices));
  return { device, token };
}

/**
 * Unbinds the user's device. Its schedules go first, in Temporal and then their rows: a schedule
 * must not outlive what it runs on (it would fire for nobody, out of its user's sight).
 */
export async function unbindDevice(repos: OwnedRepos, temporal: Client, id: string): Promise<Device> {
  const device = await devicesDb.get(repos, id);
  await deleteSchedulesOf(repos, temporal, { deviceId: device.id });
  await devicesDb.remove(repos, device);
  return device;
}

/** A new token for the device; the old one stops working at once. */
export async function rotateDeviceToken(repos: OwnedRepos, id: string) {
  const device = await devicesDb.get(repos, id);
  const { token, hash } = newOpaqueToken('dev_');
  device.tokenHash = hash;
  await devicesDb.save(repos);
  return { device, token };
}

/** The device a device token belongs to, or null. */
export async function deviceForToken(em: EntityManager, token: string): Promise<Device | null> {
  if (!token.startsWith('dev_') || token.length > 200) return null;
  return devicesDb.byTokenHash(em, hashToken(token));
}

/**
 * Presence mirror: this node holds the device's socket now, unless a newer connection (on any
 * node) already wrote its own presence. Returns whether this connection is the current one.
 */
export const markOnline = devicesDb.markOnline;

/** Refreshes last_online_at while the socket lives (locateDevice treats stale presence as offline). */
export const touchPresence = devicesDb.touchPresence;

/** Marks offline only if this connection is still the device's current one (a newer one may exist). */
export const markOffline = devicesDb.markOffline;

/** A `device/status` frame's payload (validated by the protocol's schema). */
export interface DeviceStatusInput extends DeviceReadings {
  busy?: boolean;
  app_version?: string;
  os_type?: string;
  os_version?: string;
}

/**
 * Stores a `device/status` frame of the device's current connection: busy, versions, machine
 * readings (an absent field keeps its last value). A change of busy reaches the user's feeds.
 */
export function recordDeviceStatus(em: EntityManager, deviceId: string, connectionId: string, s: DeviceStatusInput): Promise<boolean> {
  const readings: DeviceReadings = {};
  if (s.cpu_percent !== undefined) readings.cpu_percent = s.cpu_percent;
  if (s.memory_percent !== undefined) readings.memory_percent = s.memory_percent;
  if (s.battery !== undefined) readings.battery = s.battery;
  return devicesDb.recordStatus(em, deviceId, connectionId, {
    busy: s.busy, appVersion: s.app_version, osType: s.os_type, osVersion: s.os_version, readings,
  });
}
