// What a user's notification settings mean: which channel a notification of a kind goes to, and
// when a push waits for the end of quiet hours (then goes out in one digest). The list and the
// open app's feed always get every notification; settings choose only the channels that reach
// a person whose app is closed.
import {
  NOTIFICATION_CHANNELS, NOTIFICATION_KINDS, type ChannelSettings, type NotificationChannel, type NotificationKind,
  type NotificationSettings, type QuietHours,
} from '../db/entities.ts';

/** Channels that wake a phone: held during quiet hours. A webhook feeds a machine, so it is not. */
export const PUSH_CHANNELS: readonly NotificationChannel[] = ['web_push', 'fcm'];

/** Every channel with every kind spelled out: what a client shows and sends back. */
export type ResolvedSettings = {
  channels: Record<NotificationChannel, { enabled: boolean; kinds: Record<NotificationKind, boolean> }>;
  quietHours: QuietHours | null;
  updatedAt: Date | null;
};

/** The settings a user has, defaults filled in: every channel on for every kind, no quiet hours. */
export function resolveSettings(row: Pick<NotificationSettings, 'channels' | 'quietHours' | 'updatedAt'> | null): ResolvedSettings {
  const stored: ChannelSettings = row?.channels ?? {};
  const channels = Object.fromEntries(NOTIFICATION_CHANNELS.map((c) => {
    const s = stored[c];
    // A kind added after the user saved is on until they turn it off.
    const kinds = Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k, s?.kinds?.[k] ?? true])) as Record<NotificationKind, boolean>;
    return [c, { enabled: s?.enabled ?? true, kinds }];
  })) as ResolvedSettings['channels'];
  return { channels, quietHours: row?.quietHours ?? null, updatedAt: row?.updatedAt ?? null };
}

export type Decision = 'send' | 'hold' | 'off';

/**
 * What to do with a notification of `kind` on `channel` at `at`: off (the user turned it off),
 * hold (a push during quiet hours: it goes out in the digest when they end) or send.
 */
export function decide(settings: ResolvedSettings, kind: NotificationKind, channel: NotificationChannel, at: Date): Decision {
  const c = settings.channels[channel];
  if (!c.enabled || !c.kinds[kind]) return 'off';
  if (settings.quietHours && PUSH_CHANNELS.includes(channel) && inQuietHours(settings.quietHours, at)) return 'hold';
  return 'send';
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Minutes after midnight of "HH:MM" (checked by the route's schema). */
export function minutesOf(hhmm: string): number {
  const m = HHMM.exec(hhmm);
  if (!m) throw new RangeError(`not a time of day: ${hhmm}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

export const isTimeOfDay = (v: string): boolean => HHMM.test(v);

/** Whether `zone` is an IANA time zone this runtime knows. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The local time of day at `at` in `zone`, in minutes after midnight. */
export function localMinutes(zone: string, at: Date): number {
  let f = formats.get(zone);
  if (!f) formats.set(zone, (f = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })));
  const parts = f.formatToParts(at);
  const get = (t: string) => Number(parts.find((p) => p.type === t)!.value);
  return get('hour') * 60 + get('minute');
}

/** Whether `at` falls in the quiet hours (start included, end not; end before start spans midnight). */
export function inQuietHours(q: QuietHours, at: Date): boolean {
  const t = localMinutes(q.timezone, at);
  const start = minutesOf(q.start);
  const end = minutesOf(q.end);
  return start < end ? t >= start && t < end : t >= start || t < end;
}

/**
 * When the quiet hours that hold `at` end: the first instant after `at` whose local time is
 * `q.end` (the digest's time). Across a daylight saving change the day is an hour shorter or
 * longer, so the guess by minutes is checked in the zone and corrected once.
 */
export function quietHoursEnd(q: QuietHours, at: Date): Date {
  const end = minutesOf(q.end);
  const startOfMinute = at.getTime() - (at.getTime() % 60_000);
  const ahead = (end - localMinutes(q.timezone, at) + 1440) % 1440 || 1440;
  let guess = new Date(startOfMinute + ahead * 60_000);
  const off = ((localMinutes(q.timezone, guess) - end + 720 + 1440) % 1440) - 720; // signed, in (-720, 720]
  if (off !== 0) guess = new Date(guess.getTime() - off * 60_000);
  return guess;
}
