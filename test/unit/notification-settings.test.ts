// Quiet hours in the user's zone (across daylight saving changes) and which channel gets what.
// Expected instants are written out by hand from the zones' published offsets.
import { describe, expect, it } from '@jest/globals';
import { NOTIFICATION_KINDS } from '../../src/db/entities.ts';
import { decide, inQuietHours, isTimeZone, quietHoursEnd, resolveSettings } from '../../src/domain/notification-settings.ts';

const night = { start: '22:00', end: '07:00', timezone: 'Europe/Berlin' };
const at = (iso: string) => new Date(iso);

describe('quiet hours', () => {
  it('span midnight in the user\'s zone: start included, end not', () => {
    // Summer: Berlin is UTC+2.
    expect(inQuietHours(night, at('2026-07-01T19:59:00Z'))).toBe(false); // 21:59
    expect(inQuietHours(night, at('2026-07-01T20:00:00Z'))).toBe(true); // 22:00
    expect(inQuietHours(night, at('2026-07-01T23:30:00Z'))).toBe(true); // 01:30
    expect(inQuietHours(night, at('2026-07-02T04:59:00Z'))).toBe(true); // 06:59
    expect(inQuietHours(night, at('2026-07-02T05:00:00Z'))).toBe(false); // 07:00
    // Winter: UTC+1.
    expect(inQuietHours(night, at('2026-01-10T20:59:00Z'))).toBe(false); // 21:59
    expect(inQuietHours(night, at('2026-01-10T21:00:00Z'))).toBe(true); // 22:00
  });

  it('within a day when end is after start', () => {
    const lunch = { start: '12:00', end: '13:30', timezone: 'America/New_York' }; // UTC-4 in June
    expect(inQuietHours(lunch, at('2026-06-15T15:59:00Z'))).toBe(false);
    expect(inQuietHours(lunch, at('2026-06-15T16:00:00Z'))).toBe(true);
    expect(inQuietHours(lunch, at('2026-06-15T17:29:00Z'))).toBe(true);
    expect(inQuietHours(lunch, at('2026-06-15T17:30:00Z'))).toBe(false);
  });

  it('end at the next local end time, across daylight saving changes too', () => {
    expect(quietHoursEnd(night, at('2026-07-01T21:30:00Z')).toISOString()).toBe('2026-07-02T05:00:00.000Z');
    expect(quietHoursEnd(night, at('2026-07-02T04:59:30Z')).toISOString()).toBe('2026-07-02T05:00:00.000Z');
    // Spring forward (29 March, 02:00 -> 03:00): the night is an hour shorter.
    expect(quietHoursEnd(night, at('2026-03-28T22:00:00Z')).toISOString()).toBe('2026-03-29T05:00:00.000Z');
    // Fall back (25 October, 03:00 -> 02:00): an hour longer.
    expect(quietHoursEnd(night, at('2026-10-24T21:00:00Z')).toISOString()).toBe('2026-10-25T06:00:00.000Z');
  });

  it('knows IANA zones', () => {
    expect(isTimeZone('Asia/Shanghai')).toBe(true);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
  });
});

describe('channels', () => {
  it('default to every channel on for every kind, no quiet hours', () => {
    const s = resolveSettings(null);
    expect(Object.keys(s.channels).sort()).toEqual(['fcm', 'web_push', 'webhook']);
    for (const c of Object.values(s.channels)) {
      expect(c.enabled).toBe(true);
      expect(Object.keys(c.kinds).sort()).toEqual([...NOTIFICATION_KINDS].sort());
      expect(Object.values(c.kinds).every(Boolean)).toBe(true);
    }
    expect(s.quietHours).toBeNull();
  });

  it('send, hold pushes during quiet hours (not webhooks), or off', () => {
    const s = resolveSettings({
      channels: { fcm: { enabled: true, kinds: { 'run.completed': false } }, web_push: { enabled: false, kinds: {} } },
      quietHours: night, updatedAt: new Date(),
    });
    const day = at('2026-07-01T10:00:00Z');
    const late = at('2026-07-01T22:00:00Z'); // midnight in Berlin
    expect(decide(s, 'run.failed', 'fcm', day)).toBe('send');
    expect(decide(s, 'run.failed', 'fcm', late)).toBe('hold');
    expect(decide(s, 'run.completed', 'fcm', day)).toBe('off');
    expect(decide(s, 'run.failed', 'web_push', day)).toBe('off');
    expect(decide(s, 'run.failed', 'webhook', late)).toBe('send');
  });
});
