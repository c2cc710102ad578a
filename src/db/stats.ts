// The dashboard's numbers of one user (GET /stats/overview), computed in PostgreSQL.
import type { UserScope } from './scope.ts';
import { sql, type Db, type Row } from './sql.ts';

export interface WindowRow {
  win: 'today' | 'last_7_days' | 'last_30_days';
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

// The windows in one pass over the user's tasks of the last 30 local days, with the devices.
// `today` starts at local midnight in the zone; the 7 (30) days are today and the 6 (29) before
// it. A window holds the runs created in it and every run not finished yet, whenever it was
// created: a run started before midnight and still running is running today.
export function windows(db: Db, scope: UserScope, tz: string, presenceStaleS: number): Promise<WindowRow[]> {
  return db.all<WindowRow & Row>(sql`
  with b as (select (now() at time zone ${tz})::date as today),
  w as (
    select 'today' as win, (b.today::timestamp at time zone ${tz}) as since from b
    union all
    select 'last_7_days', ((b.today - 6)::timestamp at time zone ${tz}) from b
    union all
    select 'last_30_days', ((b.today - 29)::timestamp at time zone ${tz}) from b
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
  left join tasks t on t.user_id = ${scope.userId}
    and (t.created_at >= w.since or t.status in ('pending', 'running', 'paused'))
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

/** Local midnight `days - 1` days before today in the zone: the start of a `days`-day window. */
const windowStart = (tz: string, days: number) =>
  sql`(((now() at time zone ${tz})::date - ${days - 1}::int)::timestamp at time zone ${tz})`;

export interface FailureRow {
  code: string;
  count: number;
}

/** The user's failed runs created in the last `days` local days, by error code, most frequent first. */
export function failuresByCode(db: Db, scope: UserScope, tz: string, days: number, limit: number): Promise<FailureRow[]> {
  return db.all<FailureRow & Row>(sql`
  select coalesce(t.error->>'code', 'UNKNOWN') as code, count(*)::int as count
  from tasks t
  where t.user_id = ${scope.userId} and t.status = 'failed' and t.created_at >= ${windowStart(tz, days)}
  group by 1 order by count desc, code limit ${limit}`);
}

export interface WorkflowRunsRow {
  workflow_id: string;
  name: string;
  total: number;
  completed: number;
  failed: number;
  success_rate: number | null;
}

/** Per workflow, the user's runs created in the last `days` local days, the busiest first. */
export function runsByWorkflow(db: Db, scope: UserScope, tz: string, days: number, limit: number): Promise<WorkflowRunsRow[]> {
  return db.all<WorkflowRunsRow & Row>(sql`
  select w.id as workflow_id, w.name,
    count(*)::int as total,
    count(*) filter (where t.status = 'completed')::int as completed,
    count(*) filter (where t.status = 'failed')::int as failed,
    round(count(*) filter (where t.status = 'completed')::numeric
      / nullif(count(*) filter (where t.status in ('completed', 'failed', 'cancelled')), 0), 4)::float8 as success_rate
  from tasks t join workflows w on w.id = t.workflow_id
  where t.user_id = ${scope.userId} and t.created_at >= ${windowStart(tz, days)}
  group by w.id, w.name order by total desc, w.name, w.id limit ${limit}`);
}
