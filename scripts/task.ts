// `npm run task -- submit|watch|status|list ...`: start a run and follow it live, or look at
// runs, from a terminal. Events come over /ws (MonitorClient), with the REST event list as a
// safety net, one line each: `seq kind step_id detail`. submit and watch exit 0 when the run
// completes and 1 when it fails or is cancelled.
import { ApiClient, ApiError } from '../src/clients/api-client.ts';
import { MonitorClient } from '../src/clients/monitor-client.ts';
import type { Schemas } from '../src/clients/rest/index.ts';
import type { TaskEventPayload } from '../src/protocol/index.ts';
import { z } from 'zod';
import { UsageError, arg, runCli, type Spec } from './lib/cli.ts';

const options = {
  workflow: { schema: arg.text().optional(), placeholder: 'workflow id', help: 'submit: the workflow to run' },
  device: { schema: arg.text().optional(), placeholder: 'device id', help: 'submit: the device to run it on; list: only this device\'s tasks' },
  params: { schema: arg.object().optional(), placeholder: '{"k":1}', help: 'submit: the run\'s parameters (a JSON object)' },
  priority: { schema: arg.choice(['high', 'medium', 'low']).optional(), help: 'submit: high, medium or low' },
  'idempotency-key': { schema: arg.text().optional(), placeholder: 'key', help: 'submit: the same key again returns the same task' },
  detach: { schema: arg.flag(), flag: true, help: 'submit: print the task id and exit without watching' },
  status: { schema: arg.choice(['pending', 'running', 'paused', 'completed', 'failed', 'cancelled']).optional(), help: 'list: only tasks in this status' },
  limit: { schema: arg.int(1, 100).default(20), placeholder: 'n', help: 'list: how many (newest first)' },
  json: { schema: arg.flag(), flag: true, help: 'status, list: print the JSON' },
  progress: { schema: arg.flag(true), flag: true, help: 'submit, watch: print live step.progress and log lines too (--no-progress: durable events only)' },
  api: { schema: arg.url('http:', 'https:').default('http://127.0.0.1:3000/api/v1'), env: 'JARVIS_API', placeholder: 'url', help: 'REST base URL' },
  ws: { schema: arg.url('ws:', 'wss:').optional(), env: 'JARVIS_WS', placeholder: 'url', help: 'WebSocket URL (default: the API\'s node, /ws)' },
  token: { schema: arg.text().optional(), env: 'JARVIS_TOKEN', placeholder: 'access token', help: 'user access token (POST /auth/login)' },
  email: { schema: z.string().optional(), env: 'JARVIS_EMAIL', help: 'sign in with this email (instead of --token)' },
  password: { schema: z.string().optional(), env: 'JARVIS_PASSWORD', help: 'and this password' },
} satisfies Spec;

const usage = `Usage:
  npm run task -- submit --workflow <id> --device <id> [--params '{"k":1}'] [--priority high]
  npm run task -- watch <task id>
  npm run task -- status <task id>
  npm run task -- list [--status failed] [--device <id>] [--limit 20]

submit starts a run and prints its events as they happen, one line each (seq kind step_id
detail; live-only lines have seq "-"); submit and watch exit 0 when the run completes, 1 when
it fails or is cancelled. Sign in with --token (or JARVIS_TOKEN), or --email and --password.`;

const TERMINAL: Record<string, number> = { 'run.completed': 0, 'run.failed': 1, 'run.cancelled': 1 };

runCli({ name: 'task', usage, options }, async ({ options: o, positionals }) => {
  const [command, ...rest] = positionals;
  if (!command) throw new UsageError('missing command: submit, watch, status or list');
  if (!['submit', 'watch', 'status', 'list'].includes(command)) throw new UsageError(`unknown command "${command}": submit, watch, status or list`);
  const needsId = command === 'watch' || command === 'status';
  if (needsId && rest.length !== 1) throw new UsageError(`${command} takes one task id`);
  if (!needsId && rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command === 'submit') {
    if (!o.workflow) throw new UsageError('submit needs --workflow <id>');
    if (!o.device) throw new UsageError('submit needs --device <id>');
  }
  if (!o.token && !(o.email && o.password)) throw new UsageError('sign in with --token <access token> (or JARVIS_TOKEN), or --email and --password');

  const api = new ApiClient({ base: o.api, token: o.token, email: o.email, password: o.password, client: 'cli' });
  await api.ensureToken();

  switch (command) {
    case 'submit': {
      if (!o.workflow || !o.device) throw new UsageError('submit needs --workflow <id> and --device <id>');
      const body = {
        workflow_id: o.workflow,
        device_id: o.device,
        ...(o.params !== undefined ? { parameters: o.params as Record<string, unknown> } : {}),
        ...(o.priority ? { priority: o.priority as Priority } : {}),
        ...(o['idempotency-key'] ? { idempotency_key: o['idempotency-key'] } : {}),
      };
      const { task } = await api.call((rest) => rest.POST('/api/v1/tasks', { body }), 'POST /tasks');
      out(`task ${task.id} submitted (${task.status})`);
      if (o.detach) return 0;
      return watch(api, task.id, o.ws ?? api.wsUrl, o.progress);
    }
    case 'watch':
      return watch(api, rest[0], o.ws ?? api.wsUrl, o.progress);
    case 'status': {
      const { task } = await api.call((r) => r.GET('/api/v1/tasks/{id}', { params: { path: { id: rest[0] } } }), 'GET /tasks/{id}');
      if (o.json) out(JSON.stringify(task, null, 2));
      else printTask(task);
      return 0;
    }
    case 'list': {
      const query = {
        page_size: o.limit,
        ...(o.status ? { status: o.status as Task['status'] } : {}),
        ...(o.device ? { device_id: o.device } : {}),
        ...(o.workflow ? { workflow_id: o.workflow } : {}),
      };
      const page = await api.call((rest) => rest.GET('/api/v1/tasks', { params: { query } }), 'GET /tasks');
      if (o.json) {
        out(JSON.stringify(page, null, 2));
        return 0;
      }
      if (!page.list.length) out('no tasks');
      for (const t of page.list) {
        out(`${t.id}  ${t.status.padEnd(9)}  ${String(t.progress ?? 0).padStart(3)}%  device ${t.device_id}  ${t.created_at}${t.error ? `  ${t.error.code}` : ''}`);
      }
      if (page.total > page.list.length) out(`(${page.list.length} of ${page.total}; --limit for more)`);
      return 0;
    }
  }
  return 0;
});

type Task = Schemas['Task'];
type Priority = Task['priority'];

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function printTask(t: Task): void {
  out(`task      ${t.id}`);
  out(`status    ${t.status}  progress ${t.progress ?? 0}%${t.current_node ? `  at ${t.current_node}` : ''}`);
  out(`workflow  ${t.workflow_id}`);
  out(`device    ${t.device_id}`);
  out(`priority  ${t.priority}`);
  out(`created   ${t.created_at}${t.started_at ? `  started ${t.started_at}` : ''}${t.finished_at ? `  finished ${t.finished_at}` : ''}${t.duration_ms != null ? `  (${t.duration_ms} ms)` : ''}`);
  for (const s of t.steps ?? []) {
    out(`step      ${s.step_id} ${s.type} attempt ${s.attempt} ${s.status}${s.error ? ` ${s.error.code}: ${s.error.message}` : ''}`);
  }
  if (t.error) out(`error     ${t.error.code}: ${t.error.message}${t.error.step_id ? ` (step ${t.error.step_id})` : ''}`);
  if (t.result != null) out(`result    ${JSON.stringify(t.result)}`);
  if (t.temporal?.ui_url) out(`temporal  ${t.temporal.ui_url}`);
}

/** One line per event: `seq kind step_id detail`. */
function eventLine(ev: TaskEventPayload): string {
  const d = (ev.data ?? {}) as Record<string, any>;
  const json = (v: unknown) => truncate(JSON.stringify(v ?? null), 200);
  let detail = '';
  switch (ev.kind) {
    case 'run.pending': detail = String(d.reason ?? ''); break;
    case 'run.started': detail = d.after ? `after ${d.after}` : ''; break;
    case 'step.dispatched':
      detail = `${d.type}${d.name ? ` "${d.name}"` : ''} attempt=${d.attempt}${d.delivery > 1 ? ` delivery=${d.delivery}` : ''}`;
      break;
    case 'step.progress': detail = `${d.percent !== undefined && d.percent !== null ? `${d.percent}%` : ''}${d.message ? ` ${d.message}` : ''}`.trim(); break;
    case 'step.completed': detail = `output=${json(d.output)}`; break;
    case 'step.failed': detail = `${d.error?.code}: ${d.error?.message}${d.will_retry ? ' (will retry)' : ''}`; break;
    case 'run.paused':
    case 'run.resumed':
    case 'run.cancel_requested':
    case 'run.cancelled':
      detail = `by ${d.by ?? '?'} via ${d.client ?? '?'}${d.reason ? `: ${d.reason}` : ''}`;
      break;
    case 'run.waiting_approval': detail = String(d.message ?? ''); break;
    case 'run.approval_decided': detail = `${d.timed_out ? 'timed out' : d.approved ? 'approved' : 'rejected'}${d.comment ? `: ${d.comment}` : ''}`; break;
    case 'run.completed': detail = `outputs=${json(d.outputs)}`; break;
    case 'run.failed': detail = `${d.error?.code}: ${d.error?.message}`; break;
    case 'log': detail = `[${d.level}] ${d.message}`; break;
    default: detail = json(d);
  }
  return `${ev.seq ?? '-'} ${ev.kind} ${d.step_id ?? '-'}${detail ? ` ${detail}` : ''}`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Prints the run's events in seq order until it ends; its exit code. */
async function watch(api: ApiClient, taskId: string, wsUrl: string, live: boolean): Promise<number> {
  let last = 0;
  const held = new Map<number, TaskEventPayload>();
  let finish!: (code: number) => void;
  const ended = new Promise<number>((r) => { finish = r; });
  let code: number | null = null;

  const take = (ev: TaskEventPayload) => {
    if (code !== null) return;
    if (ev.seq === undefined) {
      if (live) out(eventLine(ev));
      return;
    }
    if (ev.seq <= last) return; // already printed (both sources deliver)
    held.set(ev.seq, ev);
    while (held.has(last + 1)) {
      const next = held.get(last + 1)!;
      held.delete(last + 1);
      last++;
      out(eventLine(next));
      if (next.kind in TERMINAL) {
        code = TERMINAL[next.kind];
        finish(code);
        return;
      }
    }
  };

  let subscribeId = '';
  const monitor = new MonitorClient({
    url: wsUrl, token: api.token!, reconnect: true,
    onEvent: (ev) => { if (ev.task_id === taskId) take(ev); },
    onFrame: (f) => {
      if (f.type === 'error' && f.re === subscribeId) {
        process.stderr.write(`task: cannot watch ${taskId}: ${String(f.payload.message)}\n`);
        finish(1);
      }
    },
  });
  let monitorUp = false;
  try {
    await monitor.start();
    monitorUp = true;
    subscribeId = monitor.subscribe(taskId, 0);
  } catch (err) {
    process.stderr.write(`task: no live stream (${(err as Error).message}); following the event list over REST\n`);
  }

  const onSignal = () => {
    process.stderr.write(`\nstopped watching; the run goes on: npm run task -- status ${taskId}\n`);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // The REST event list fills any gap the socket leaves (a drop it could not resume, an expired token).
  let failure: Error | null = null;
  const poll = async () => {
    while (code === null) {
      const wait = new Promise((r) => setTimeout(r, monitorUp ? 3000 : 1000));
      await Promise.race([wait, ended]);
      if (code !== null) return;
      try {
        const page = await api.call((rest) => rest.GET('/api/v1/tasks/{id}/events', {
          params: { path: { id: taskId }, query: { after_seq: last, limit: 1000 } },
        }), 'GET /tasks/{id}/events');
        for (const ev of page.list) take(ev as TaskEventPayload);
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 404)) {
          failure = err;
          finish(1);
          return;
        }
      }
    }
  };
  void poll();
  const result = await ended;
  await monitor.stop().catch(() => undefined);
  if (failure) process.stderr.write(`task: ${(failure as Error).message}\n`);
  return result;
}
