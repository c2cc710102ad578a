// Responses of /notifications.
import { z } from 'zod';
import { NOTIFICATION_CHANNELS, NOTIFICATION_KINDS } from '../../db/entities.ts';
import { EXAMPLE, instant, nullableInstant, pageOf, uuid } from './common.ts';

const path = z.string().startsWith('/');

export const Notification = z.strictObject({
  id: uuid,
  kind: z.enum(NOTIFICATION_KINDS),
  title: z.string(),
  body: z.string().nullable(),
  task_id: uuid.nullable(),
  workflow_id: uuid.nullable(),
  workflow_name: z.string().nullable().describe('The workflow\'s name when the notification was written'),
  device_id: uuid.nullable(),
  device_name: z.string().nullable().describe('The device\'s name when the notification was written'),
  links: z.strictObject({
    monitor: path.nullable().describe('The task on the web monitor page'),
    task: path.nullable().describe('GET this for the task'),
    approval: path.nullable().describe('POST the decision here (approval.requested and approval.expiring)'),
  }).describe('Paths on this server (relative to its public URL) that open what the notification is about'),
  created_at: instant,
  read_at: nullableInstant,
}).meta({
  id: 'Notification',
  examples: [{
    id: '8a0c2e4a-6c8e-4a0c-9e4a-6c8e0a2c4e6a', kind: 'run.failed', title: 'Daily report: Run failed: WINDOW_NOT_FOUND',
    body: 'no window titled "Excel"', task_id: EXAMPLE.taskId, workflow_id: EXAMPLE.workflowId, workflow_name: 'Daily report',
    device_id: EXAMPLE.deviceId, device_name: 'Office PC',
    links: { monitor: `/monitor#task=${EXAMPLE.taskId}`, task: `/api/v1/tasks/${EXAMPLE.taskId}`, approval: null },
    created_at: EXAMPLE.at, read_at: null,
  }],
});

export const notificationPage = pageOf(Notification);
export const unreadCount = z.strictObject({ unread: z.int().min(0) });
export const markedRead = z.strictObject({ marked: z.int().min(0).describe('How many unread notifications this marked read') });

const kindSwitches = z.strictObject(Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, z.boolean()])) as Record<(typeof NOTIFICATION_KINDS)[number], z.ZodBoolean>);
const channelSettings = z.strictObject({
  enabled: z.boolean(),
  kinds: kindSwitches.describe('Per kind: false turns that kind off on this channel'),
});

export const QuietHours = z.strictObject({
  start: z.string().describe('Local time "HH:MM" the quiet hours start'),
  end: z.string().describe('Local time "HH:MM" they end (before start: they span midnight); held pushes go out then, as one digest'),
  timezone: z.string().describe('IANA time zone, e.g. "Europe/Berlin"'),
}).meta({ id: 'QuietHours' });

export const NotificationSettings = z.strictObject({
  channels: z.strictObject(Object.fromEntries(NOTIFICATION_CHANNELS.map((c) => [c, channelSettings])) as Record<(typeof NOTIFICATION_CHANNELS)[number], typeof channelSettings>),
  quiet_hours: QuietHours.nullable(),
  updated_at: nullableInstant.describe('Null until first saved (the defaults)'),
}).meta({
  id: 'NotificationSettings',
  description: 'Which channels reach me for which kinds, and quiet hours for pushes. The list and the open app\'s feed always get every notification.',
  examples: [{
    channels: Object.fromEntries(NOTIFICATION_CHANNELS.map((c) => [c, {
      enabled: c !== 'webhook', kinds: Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, k !== 'run.completed'])),
    }])),
    quiet_hours: { start: '22:00', end: '07:00', timezone: 'Europe/Berlin' },
    updated_at: EXAMPLE.at,
  }],
});
export const notificationSettingsData = z.strictObject({ settings: NotificationSettings });
