import { z } from 'zod';
import type { OwnedRepos } from '../../db/owned.ts';
import { errors } from '../../errors.ts';
import { envelope } from '../middleware.ts';
import { defineRoute } from '../route.ts';
import { statsOverview } from '../schemas/stats.ts';

/** An IANA zone name (Europe/Paris, Etc/GMT+5, UTC) that Intl knows; offsets like +02:00 are not accepted. */
function ianaZone(tz: string): string | null {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/.test(tz)) return null;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

export const statsQuery = z.object({
  tz: z.string().max(64).refine((tz) => ianaZone(tz) !== null, { message: 'must be an IANA time zone, e.g. Europe/Paris' }).optional(),
}).strict();

interface WindowRow {
  win: 'today' | 'last_7_days';
  since: Date;
  total: number;
  pending: number;
  running: number;
  paused: number;
  completed: number;
  failed: number;
  cancelled: number;
  success_rate: number | null;
  avg_duration_ms: number | null;
  devices_online: number;
  devices_total: number;
}

interface DayRow {
  date: string;
  total: number;
  completed: number;
  failed: number;
}

// Both windows in one pass over the user's tasks of the last 7 local days, with the devices.
// `today` starts at local midnight in the zone; the 7 days are today and the 6 before it.
const WINDOWS_SQL = `
  with b as (select (now() at time zone ?)::date as today),
  w as (
    select 'today' as win, (b.today::timestamp at time zone ?) as since from b
    union all
    select 'last_7_days', ((b.today - 6)::timestamp at time zone ?) from b
  )
  select w.win, w.since,
    count(t.id)::int as total,
    count(t.id) filter (where t.status = 'pending')::int as pending,
    count(t.id) filter (where t.status = 'running')::int as running,
    count(t.id) filter (where t.status = 'paused')::int as paused,
    count(t.id) filter (where t.status = 'completed')::int as completed,
    count(t.id) filter (where t.status = 'failed')::int as failed,
    count(t.id) filter (where t.status = 'cancelled')::int as cancelled,
    round(count(t.id) filter (where t.status = 'completed')::numeric
      / nullif(count(t.id) filter (where t.status in ('completed', 'failed', 'cancelled')), 0), 4)::float8 as success_rate,
    round(avg(t.duration_ms) filter (where t.status = 'completed'))::float8 as avg_duration_ms,
    dv.online as devices_online, dv.total as devices_total
  from w
  left join tasks t on t.user_id = ? and t.created_at >= w.since
  cross join (
    select count(*)::int as total,
      count(*) filter (where d.is_online and d.last_online_at > now() - make_interval(secs => ?))::int as online
    from devices d where d.user_id = ?
  ) dv
  group by w.win, w.since, dv.online, dv.total
`;

// Per local day, the 7 days ending today (days without tasks included, with zeros).
const DAYS_SQL = `
  with b as (select (now() at time zone ?)::date as today),
  d as (select (b.today - g.n) as day from b, generate_series(0, 6) as g(n))
  select to_char(d.day, 'YYYY-MM-DD') as date,
    count(t.id)::int as total,
    count(t.id) filter (where t.status = 'completed')::int as completed,
    count(t.id) filter (where t.status = 'failed')::int as failed
  from d
  left join tasks t on t.user_id = ?
    and t.created_at >= (d.day::timestamp at time zone ?)
    and t.created_at < ((d.day + 1)::timestamp at time zone ?)
  group by d.day
  order by d.day
`;

/** The dashboard numbers of the repos' user, computed in PostgreSQL. */
export async function overview(repos: OwnedRepos, tz: string, presenceStaleMs: number) {
  const em = repos.em;
  const windows = await em.execute<WindowRow[]>(WINDOWS_SQL, [tz, tz, tz, repos.userId, presenceStaleMs / 1000, repos.userId], 'all');
  const days = await em.execute<DayRow[]>(DAYS_SQL, [tz, repos.userId, tz, tz], 'all');
  const window = (name: WindowRow['win']) => {
    const r = windows.find((x) => x.win === name)!;
    return {
      since: new Date(r.since).toISOString(),
      total: r.total,
      by_status: {
        pending: r.pending, running: r.running, paused: r.paused,
        completed: r.completed, failed: r.failed, cancelled: r.cancelled,
      },
      finished: r.completed + r.failed + r.cancelled,
      success_rate: r.success_rate,
      avg_duration_ms: r.avg_duration_ms,
    };
  };
  const any = windows[0];
  return {
    tz,
    generated_at: new Date().toISOString(),
    today: window('today'),
    last_7_days: window('last_7_days'),
    devices: { online: any.devices_online, total: any.devices_total },
    days: days.map((d) => ({ date: d.date, total: d.total, completed: d.completed, failed: d.failed })),
  };
}

export function statsRoutes(opts: { presenceStaleMs: number }) {
  return [
    defineRoute<undefined, z.infer<typeof statsQuery>>({
      method: 'get', path: '/stats/overview', tag: 'stats', auth: 'user',
      summary: 'Dashboard: today and last 7 days (task counts by status, success rate, average duration), devices online, per-day counts; days in `tz` (default UTC)',
      query: statsQuery, success: { status: 200, description: 'The dashboard numbers', data: statsOverview }, errors: [400, 401],
      async handler(ctx, { query }) {
        const tz = query.tz ? ianaZone(query.tz)! : 'UTC';
        try {
          envelope(ctx, await overview(ctx.state.repos, tz, opts.presenceStaleMs));
        } catch (err) {
          // A zone Intl knows but this PostgreSQL's time zone database does not.
          if ((err as { code?: string }).code === '22023') {
            throw errors.invalid('invalid query', [{ path: 'tz', message: 'time zone not known to the database' }]);
          }
          throw err;
        }
      },
    }),
  ];
}
