import { z } from 'zod';
import * as devicesDb from '../../db/devices.ts';
import { registerDevice, rotateDeviceToken, unbindDevice } from '../../domain/devices.ts';
import type { TaskEngine } from '../../domain/tasks.ts';
import { envelope } from '../middleware.ts';
import { presentDevice } from '../presenters.ts';
import { defineRoute, idParams } from '../route.ts';
import { deleted } from '../schemas/common.ts';
import { deviceData, deviceList, deviceWithToken } from '../schemas/devices.ts';

const short = (max: number) => z.string().trim().min(1).max(max);

export const deviceBody = z.object({
  device_id: short(255),
  device_name: short(255),
  os_type: short(50).optional(),
  os_version: short(50).optional(),
  app_version: short(50).optional(),
  capabilities: z.array(short(100)).max(100).optional(),
}).strict();

export const deviceUpdateBody = z.object({
  device_name: short(255).optional(),
  app_version: short(50).optional(),
  os_version: short(50).optional(),
  capabilities: z.array(short(100)).max(100).optional(),
}).strict();

/** What the gateway offers routes: ending live connections whose credentials changed. */
export interface DeviceSockets {
  endDeviceConnection(deviceId: string, reason: 'device token rotated' | 'device unbound'): void;
  /** Closes the monitor sockets opened with access tokens of this login session. */
  endLoginSession(sessionId: string, reason: 'logged out'): void;
}

export function deviceRoutes(sockets: DeviceSockets, engine: Pick<TaskEngine, 'temporal' | 'limits'>) {
  return [
    defineRoute({
      method: 'get', path: '/users/devices', tag: 'devices', auth: 'user', summary: 'List my devices with presence',
      success: { status: 200, description: 'My devices, oldest first', data: deviceList }, errors: [401],
      async handler(ctx) {
        const list = await devicesDb.list(ctx.state.repos);
        envelope(ctx, { list: list.map(presentDevice), total: list.length });
      },
    }),
    defineRoute<z.infer<typeof deviceBody>>({
      method: 'post', path: '/users/devices', tag: 'devices', auth: 'user',
      summary: 'Register a device; its token is shown once', body: deviceBody,
      success: { status: 201, description: 'The device and its token (shown once)', data: deviceWithToken }, errors: [400, 401, 403, 409],
      async handler(ctx, { body }) {
        const { device, token } = await registerDevice(ctx.state.repos, body, engine.limits.devices);
        envelope(ctx, { device: presentDevice(device), device_token: token }, 201);
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'get', path: '/users/devices/:id', tag: 'devices', auth: 'user', summary: 'One device',
      params: idParams, success: { status: 200, description: 'The device', data: deviceData }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const device = await devicesDb.get(ctx.state.repos, params.id);
        envelope(ctx, { device: presentDevice(device) });
      },
    }),
    defineRoute<z.infer<typeof deviceUpdateBody>, undefined, z.infer<typeof idParams>>({
      method: 'put', path: '/users/devices/:id', tag: 'devices', auth: 'user', summary: 'Rename or update a device',
      params: idParams, body: deviceUpdateBody, success: { status: 200, description: 'The updated device', data: deviceData }, errors: [400, 401, 404],
      async handler(ctx, { params, body }) {
        const device = await devicesDb.get(ctx.state.repos, params.id);
        if (body.device_name !== undefined) device.deviceName = body.device_name;
        if (body.app_version !== undefined) device.appVersion = body.app_version;
        if (body.os_version !== undefined) device.osVersion = body.os_version;
        if (body.capabilities !== undefined) device.capabilities = body.capabilities;
        await devicesDb.save(ctx.state.repos);
        envelope(ctx, { device: presentDevice(device) });
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'post', path: '/users/devices/:id/token', tag: 'devices', auth: 'user',
      summary: 'Rotate the device token: the old one stops working and its live connection is closed (4401)',
      params: idParams, success: { status: 200, description: 'The device and its new token (shown once)', data: deviceWithToken }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const { device, token } = await rotateDeviceToken(ctx.state.repos, params.id);
        sockets.endDeviceConnection(device.id, 'device token rotated');
        envelope(ctx, { device: presentDevice(device), device_token: token });
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'delete', path: '/users/devices/:id', tag: 'devices', auth: 'user',
      summary: 'Unbind a device: its schedules are deleted (in Temporal too) and its live connection closed', params: idParams,
      success: { status: 200, description: 'Unbound', data: deleted }, errors: [400, 401, 404, 503],
      async handler(ctx, { params }) {
        const device = await unbindDevice(ctx.state.repos, engine.temporal, params.id);
        sockets.endDeviceConnection(device.id, 'device unbound');
        envelope(ctx, { deleted: true });
      },
    }),
  ];
}
