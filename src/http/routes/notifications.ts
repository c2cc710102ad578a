import { z } from 'zod';
import { NOTIFICATION_CHANNELS, NOTIFICATION_KINDS, Notification } from '../../db/entities.ts';
import * as notificationsDb from '../../db/notifications.ts';
import * as settingsDb from '../../db/notification-settings.ts';
import { notificationLinks } from '../../domain/notification-links.ts';
import { isTimeOfDay, isTimeZone, resolveSettings, type ResolvedSettings } from '../../domain/notification-settings.ts';
import { envelope } from '../middleware.ts';
import { cursorParam, keysetPage, pageQuery } from '../paging.ts';
import { defineRoute, idParams } from '../route.ts';
import { Delivery } from '../schemas/webhooks.ts';
import { presentDelivery } from './webhooks.ts';
import * as deliveriesDb from '../../db/deliveries.ts';
import {
  markedRead, notificationPage, notificationSettingsData, unreadCount, type Notification as NotificationOut,
  type NotificationSettings as SettingsOut,
} from '../schemas/notifications.ts';

/** Most ids one mark-read request names (a phone marks what it shows; `all` for the rest). */
export const MAX_MARK_IDS = 100;

export const notificationListQuery = pageQuery.extend({
  cursor: cursorParam,
  unread: z.enum(['true', 'false'], { message: 'must be true or false' }).transform((v) => v === 'true').optional(),
}).strict();

const deliveryList = z.strictObject({ list: z.array(Delivery) });

export const markReadBody = z.object({
  ids: z.array(z.uuid({ message: 'must be a UUID' })).min(1).max(MAX_MARK_IDS).optional(),
  all: z.literal(true).optional(),
}).strict().refine((b) => (b.ids === undefined) !== (b.all === undefined), { message: 'give either ids or all: true' })
  .meta({ examples: [{ ids: ['8a0c2e4a-6c8e-4a0c-9e4a-6c8e0a2c4e6a'] }] });

const kindsBody = z.object(Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, z.boolean().optional()]))).strict();
const channelBody = z.object({ enabled: z.boolean().optional(), kinds: kindsBody.optional() }).strict();

/**
 * PUT /notifications/settings: the settings to keep (what is left out gets its default: on, no
 * quiet hours). Times and zones are checked here, so a stored setting never fails a delivery.
 */
export const settingsBody = z.object({
  channels: z.object(Object.fromEntries(NOTIFICATION_CHANNELS.map((c) => [c, channelBody.optional()]))).strict().optional(),
  quiet_hours: z.object({
    start: z.string().refine(isTimeOfDay, 'must be a time of day "HH:MM" (00:00-23:59)'),
    end: z.string().refine(isTimeOfDay, 'must be a time of day "HH:MM" (00:00-23:59)'),
    timezone: z.string().max(64).refine(isTimeZone, 'must be an IANA time zone like "Europe/Berlin"'),
  }).strict().refine((q) => q.start !== q.end, { message: 'start and end must differ', path: ['end'] }).nullable().optional(),
}).strict().meta({ examples: [{ channels: { fcm: { enabled: true, kinds: { 'run.completed': false } } }, quiet_hours: { start: '22:00', end: '07:00', timezone: 'Europe/Berlin' } }] });

export function presentSettings(s: ResolvedSettings): z.output<typeof SettingsOut> {
  return { channels: s.channels, quiet_hours: s.quietHours, updated_at: s.updatedAt ? s.updatedAt.toISOString() : null };
}

export function presentNotification(n: Notification): z.output<typeof NotificationOut> {
  const task = n.taskId ?? null;
  return {
    id: n.id,
    kind: n.kind,
    title: n.title,
    body: n.body ?? null,
    task_id: task,
    workflow_id: n.workflowId ?? null,
    workflow_name: n.workflowName ?? null,
    device_id: n.deviceId ?? null,
    device_name: n.deviceName ?? null,
    links: task ? notificationLinks(task, n.kind) : { monitor: null, task: null, approval: null },
    created_at: n.createdAt.toISOString(),
    read_at: n.readAt ? n.readAt.toISOString() : null,
  };
}

export function notificationRoutes() {
  return [
    defineRoute<undefined, z.infer<typeof notificationListQuery>>({
      method: 'get', path: '/notifications', tag: 'notifications', auth: 'user',
      summary: 'List my notifications, newest first (unread=true: only unread ones; page or cursor)',
      query: notificationListQuery, success: { status: 200, description: 'A page of my notifications', data: notificationPage }, errors: [400, 401],
      async handler(ctx, { query }) {
        const where = notificationsDb.where({ unread: query.unread });
        envelope(ctx, await keysetPage(ctx.state.repos, Notification, where, query, presentNotification));
      },
    }),
    defineRoute({
      method: 'get', path: '/notifications/unread-count', tag: 'notifications', auth: 'user',
      summary: 'How many of my notifications are unread (the badge)',
      success: { status: 200, description: 'The unread count', data: unreadCount }, errors: [401],
      async handler(ctx) {
        envelope(ctx, { unread: await notificationsDb.unreadCount(ctx.state.repos) });
      },
    }),
    defineRoute({
      method: 'get', path: '/notifications/settings', tag: 'notifications', auth: 'user',
      summary: 'My notification settings: channels per kind, quiet hours (defaults until saved)',
      success: { status: 200, description: 'My settings, every channel and kind spelled out', data: notificationSettingsData }, errors: [401],
      async handler(ctx) {
        envelope(ctx, { settings: presentSettings(resolveSettings(await settingsDb.get(ctx.state.repos))) });
      },
    }),
    defineRoute<z.infer<typeof settingsBody>>({
      method: 'put', path: '/notifications/settings', tag: 'notifications', auth: 'user',
      summary: 'Replace my notification settings (left out: on; quiet_hours null or left out: none)',
      body: settingsBody, success: { status: 200, description: 'My settings as saved', data: notificationSettingsData }, errors: [400, 401],
      async handler(ctx, { body }) {
        const saved = await settingsDb.put(ctx.state.repos, body.channels ?? {}, body.quiet_hours ?? null);
        envelope(ctx, { settings: presentSettings(resolveSettings(saved)) });
      },
    }),
    defineRoute<undefined, undefined, z.infer<typeof idParams>>({
      method: 'get', path: '/notifications/:id/deliveries', tag: 'notifications', auth: 'user',
      summary: 'Where one of my notifications went: its deliveries on every channel, with their status',
      params: idParams, success: { status: 200, description: 'Its deliveries, oldest first', data: deliveryList }, errors: [400, 401, 404],
      async handler(ctx, { params }) {
        const n = await notificationsDb.get(ctx.state.repos, params.id);
        envelope(ctx, { list: (await deliveriesDb.ofNotification(ctx.state.repos, n.id)).map(presentDelivery) });
      },
    }),
    defineRoute<z.infer<typeof markReadBody>>({
      method: 'post', path: '/notifications/read', tag: 'notifications', auth: 'user',
      summary: 'Mark notifications read: some of mine by id (others\' ids are ignored), or all of mine',
      body: markReadBody, success: { status: 200, description: 'How many were marked', data: markedRead }, errors: [400, 401],
      async handler(ctx, { body }) {
        envelope(ctx, { marked: await notificationsDb.markRead(ctx.state.repos, body.all ? 'all' : body.ids!) });
      },
    }),
  ];
}
