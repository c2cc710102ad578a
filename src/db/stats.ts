// The dashboard's numbers of one user (GET /stats/overview), computed in PostgreSQL.
import type { UserScope } from './scope.ts';
import { sql, type Db, type Row } from './sql.ts';

export interface WindowRow {
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

export interface DayRow {
  date: string;
  total: number;
  completed: number;
  failed: number;
}

// Both windows in one pass over the user's tasks of the last 7 local days, with the devices.
// `today` starts at local midnight in the zone; the 7 days are today and the 6 before it.
export function windows(db: Db, scope: UserScope, tz: string, presenceStaleS: number): Promise<WindowRow[]> {
  return db.all<WindowRow & Row>(sql`
  with b as (select (now() at time zone ${tz})::date as today),
  w as (
    select 'today' as win, (b.today::timestamp at time zone ${tz}) as since from b
    union all
    select 'last_7_days', ((b.today - 6)::timestamp at time zone ${tz}) from b
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
  left join tasks t on t.user_id = ${scope.userId} and t.created_at >= w.since
  cross join (
    select count(*)::int as total,
      count(*) filter (where d.is_online and d.last_online_at > now() - make_interval(secs => ${presenceStaleS}::float8))::int as online
    from devices d where d.user_id = ${scope.userId}
  ) dv
  group by w.win, w.since, dv.online, dv.total`);
}

// Per local day, the 7 days ending today (days without tasks included, with zeros).
export function days(db: Db, scope: UserScope, tz: string): Promise<DayRow[]> {
  return db.all<DayRow & Row>(sql`
  with b as (select (now() at time zone ${tz})::date as today),
  d as (select (b.today - g.n) as day from b, generate_series(0, 6) as g(n))
  select to_char(d.day, 'YYYY-MM-DD') as date,
    count(t.id)::int as total,
    count(t.id) filter (where t.status = 'completed')::int as completed,
    count(t.id) filter (where t.status = 'failed')::int as failed
  from d
  left join tasks t on t.user_id = ${scope.userId}
    and t.created_at >= (d.day::timestamp at time zone ${tz})
    and t.created_at < ((d.day + 1)::timestamp at time zone ${tz})
  group by d.day
  order by d.day`);
}

