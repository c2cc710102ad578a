import { z } from 'zod';
import type { OwnedRepos } from '../../db/owned.ts';
import { dbOf } from '../../db/sql.ts';
import * as statsDb from '../../db/stats.ts';
import type { WindowRow } from '../../db/stats.ts';
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

/** The month window, in local days (failures by code and per-workflow runs are over it too). */
const MONTH_DAYS = 30;
const TOP_FAILURE_CODES = 10;
const TOP_WORKFLOWS = 20;

/** The dashboard numbers of the repos' user, computed in PostgreSQL. */
export async function overview(repos: OwnedRepos, tz: string, presenceStaleMs: number) {
  const db = await dbOf(repos.root);
  const [windows, days, failures, workflows] = await Promise.all([
    statsDb.windows(db, repos, tz, presenceStaleMs / 1000),
    statsDb.days(db, repos, tz),
    statsDb.failuresByCode(db, repos, tz, MONTH_DAYS, TOP_FAILURE_CODES),
    statsDb.runsByWorkflow(db, repos, tz, MONTH_DAYS, TOP_WORKFLOWS),
  ]);
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
    last_30_days: window('last_30_days'),
    devices: { online: any.devices_online, total: any.devices_total },
    days: days.map((d) => ({ date: d.date, total: d.total, completed: d.completed, failed: d.failed })),
    failures_by_code: failures.map((f) => ({ code: f.code, count: f.count })),
    workflows: workflows.map((w) => ({
      workflow_id: w.workflow_id, name: w.name, total: w.total, completed: w.completed, failed: w.failed, success_rate: w.success_rate,
    })),
  };
}

export function statsRoutes(opts: { presenceStaleMs: number }) {
  return [
    defineRoute<undefined, z.infer<typeof statsQuery>>({
      method: 'get', path: '/stats/overview', tag: 'stats', auth: 'user',
      summary: 'Dashboard: today, last 7 and 30 days (task counts by status, success rate, average duration; unfinished runs count in every window), devices online, per-day counts, failures by error code and runs per workflow over 30 days; days in `tz` (default UTC)',
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
