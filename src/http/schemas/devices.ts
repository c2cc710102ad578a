// Responses of /users/devices: a device with its presence and last status; its token only when just issued.
import { z } from 'zod';
import { EXAMPLE, instant, nullableInstant, uuid } from './common.ts';

const percent = z.number().min(0).max(100);

export const DeviceReadings = z.strictObject({
  cpu_percent: percent.optional(),
  memory_percent: percent.optional(),
  battery: z.strictObject({ percent, charging: z.boolean().optional() }).optional(),
}).meta({ id: 'DeviceReadings', description: 'Machine readings (percent) the device sent in device/status; a field it never sent is absent' });

export const Device = z.strictObject({
  id: uuid,
  device_id: z.string().describe('The id the PC chose for itself'),
  device_name: z.string(),
  os_type: z.string().nullable(),
  os_version: z.string().nullable(),
  app_version: z.string().nullable(),
  capabilities: z.array(z.string()),
  is_online: z.boolean(),
  is_busy: z.boolean().describe('What the connected device last said in device/status; false when offline'),
  status: DeviceReadings.nullable().describe('Its last machine readings, null until it sends any'),
  status_at: nullableInstant.describe('When the readings came'),
  last_online_at: nullableInstant,
  created_at: instant,
}).meta({
  id: 'Device',
  examples: [{
    id: EXAMPLE.deviceId, device_id: 'pc-office', device_name: 'Office PC', os_type: 'windows', os_version: '11',
    app_version: '1.4.0', capabilities: ['demo.echo', 'demo.sleep'], is_online: true, is_busy: false,
    status: { cpu_percent: 12.5, memory_percent: 61, battery: { percent: 84, charging: false } }, status_at: EXAMPLE.at,
    last_online_at: EXAMPLE.at, created_at: EXAMPLE.at,
  }],
});

export const deviceData = z.strictObject({ device: Device });
export const deviceList = z.strictObject({ list: z.array(Device), total: z.int().min(0) });
export const deviceWithToken = z.strictObject({
  device: Device,
  device_token: z.string().describe('Shown once: the PC connects to /ws with it').meta({ examples: ['dev_4Jm2pX9qTz0wYc7bN1s8'] }),
});
