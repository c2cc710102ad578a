// Renders docs/benchmarks.md from one bench run. The "Analysis" section between the markers is
// written by people and kept as it is when the figures are regenerated.
import type { F1Level } from './figures/f1-throughput.ts';
import type { F2Result } from './figures/f2-per-step.ts';
import type { F3Result } from './figures/f3-control.ts';
import type { F4Level } from './figures/f4-fan-out.ts';
import type { F5Result } from './figures/f5-rest.ts';
import type { F6Result } from './figures/f6-memory.ts';
import type { F7Result } from './figures/f7-notifications.ts';
import { F8_TARGET, type F8Result } from './figures/f8-first-step.ts';
import { F5_TARGET } from './figures/f5-rest.ts';
import { F4_TARGET } from './figures/f4-fan-out.ts';
import type { ProfileResult } from './figures/profiles.ts';
import { median, percentile, type MachineInfo } from './lib.ts';

export interface Results {
  mode: string;
  machine: MachineInfo;
  pgVersion: string;
  date: string;
  command: string;
  sizes: {
    f1Levels: number[]; f3Reps: number; f4Monitors: number[]; f4Steps: number; f5Seconds: number;
    f5Connections: number; f6Sockets: number; f6Runs: number;
  };
  f1: F1Level[];
  f2: F2Result | null;
  f3: F3Result | null;
  f4: F4Level[];
  f5: F5Result | null;
  f6: F6Result | null;
  f7: F7Result | null;
  f8: F8Result | null;
  /** The server's settings beyond their defaults (what the load needed). */
  settings: Record<string, string>;
  profiles: ProfileResult[];
  /** F5's path measured layer by layer (when F5 missed and there was time). */
  f5Layers: { path: string; what: string; perS: number }[];
  /** What the time budget left out. */
  skipped: string[];
  durationS: number;
}

export const ANALYSIS_START = '<!-- analysis:start (kept when the bench rewrites this file) -->';
export const ANALYSIS_END = '<!-- analysis:end -->';

const DEFAULT_ANALYSIS = `_No analysis written yet: read the figures and the profiles above, then write here why each
missed target is missed._`;

const f = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const x = (r: number) => (Number.isFinite(r) ? `**${r.toFixed(2)}x**` : '**n/a**');
const kb = (b: number) => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)} KB` : 'n/a');
const verdict = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'met' : '**missed**');

export function renderReport(r: Results, previous = ''): string {
  const m = r.machine;
  const out: string[] = [];
  const p = (...lines: string[]) => out.push(...lines);

  p('# Benchmarks', '');
  p(`Written by \`${r.command}\` (scripts/bench/run.ts). Everything above "Analysis" is generated:`,
    'run the bench again rather than editing it. Every figure is a ratio against a bare baseline',
    'measured in the same run, on the same Temporal dev server and PostgreSQL, so that a noisy, shared',
    'machine still gives comparable numbers; the absolute values are there to read the ratios by.', '');

  p('## This run', '');
  p('| | |', '| --- | --- |');
  p(`| mode | ${r.mode} |`);
  p(`| date | ${r.date} |`);
  p(`| commit | ${m.commit}${m.dirty ? ' (with uncommitted changes)' : ''} |`);
  p(`| machine | ${m.cpu}, ${m.cores} cores, ${f(m.memoryGiB)} GiB memory, ${m.os} |`);
  p(`| node | ${m.node} |`);
  p(`| Temporal | dev server, in memory: ${m.temporal.replace(/\n/g, ' ')} |`);
  p(`| PostgreSQL | ${r.pgVersion} on 127.0.0.1:5432 |`);
  p(`| server | NODE_ENV=production, LOG_LEVEL ${r.settings.LOG_LEVEL ?? 'at its default (info: an access log line per request, JSON to a file)'}; beyond the defaults: ${Object.entries(r.settings).filter(([k]) => k !== 'LOG_LEVEL').map(([k, v]) => `${k}=${v}`).join(', ') || 'none'} |`);
  p(`| duration | ${f(r.durationS, 0)} s |`, '');

  // ---- the figures ----
  const f1 = r.f1[r.f1.length - 1];
  const f4 = r.f4[r.f4.length - 1];
  const rows: string[] = [];
  const row = (id: string, what: string, ours: string, bare: string, rat: string, target: string, ok: boolean | null) =>
    rows.push(`| ${id} | ${what} | ${ours} | ${bare} | ${rat} | ${target} | ${verdict(ok)} |`);
  if (f1) {
    row('F1', `throughput: 3-step runs/s at ${f1.concurrency} concurrent runs (one simulated device each); baseline: each step a round trip to a bare device (Temporal alone: trivial steps, for information)`,
      `${f(f1.ours.perS, 2)} runs/s`, `${f(f1.bare.perS, 2)} runs/s (Temporal alone: ${f(f1.alone.perS, 2)})`,
      `${x(f1.ratio)} (vs Temporal alone: ${f(f1.aloneRatio, 2)}x)`, '>= 0.8x', f1.ratio >= 0.8);
  }
  if (r.f2) {
    row('F2', `per-step overhead: ms one more step adds to a run (slope over 1 and ${r.f2.steps} steps, medians of ${r.f2.runs}, concurrency 1)`,
      `${f(r.f2.ours.perStepMs)} ms/step, **+${f(r.f2.addedPerStepMs)} ms/step**`, `${f(r.f2.bare.perStepMs)} ms/step`, x(r.f2.ratio),
      '<= 5 ms/step', r.f2.addedPerStepMs <= 5);
  }
  if (r.f3) {
    const o = median(r.f3.pause);
    const b = median(r.f3.bare);
    row('F3', `control latency: POST /tasks/:id/pause -> device gets step/pause, p50 (p99) over ${r.f3.reps}`,
      `${f(o)} ms (${f(percentile(r.f3.pause, 99))} ms)`, `${f(b)} ms (${f(percentile(r.f3.bare, 99))} ms)`,
      x(o / b), '<= 1.3x (p50)', o / b <= 1.3);
  }
  if (f4) {
    const onePoller = f4.live.streams >= 1 && allPollsEqual(r.f4);
    const worst = Math.min(...r.f4.map((l) => l.ratio));
    row('F4', `monitor fan-out: events/s to ${r.f4.map((l) => int(l.monitors)).join(' / ')} monitors of one run (ratio at each); history polls of the run`,
      `${r.f4.map((l) => int(l.ours.perS)).join(' / ')} ev/s; ${f4.live.polls ?? 'n/a'} polls`, `${r.f4.map((l) => int(l.bare.perS)).join(' / ')} ev/s`,
      r.f4.map((l) => x(l.ratio)).join(' / '), `>= ${F4_TARGET}x at every level, one poller per run`, worst >= F4_TARGET && onePoller);
  }
  if (r.f5) {
    row('F5', `REST: GET /tasks/:id requests/s, ${r.f5.connections} connections, ${r.f5.seconds} s, over ${r.f5.users} users (a token and a run each)`,
      `${int(r.f5.ours.perS)} req/s`, `${int(r.f5.bare.perS)} req/s`, x(r.f5.ratio), `>= ${F5_TARGET}x`, r.f5.ratio >= F5_TARGET && r.f5.ours.non2xx === 0);
  }
  if (r.f6) {
    row('F6 sockets', `memory per idle device socket (heap + external after GC, ${r.f6.sockets.ours.n} sockets)`,
      kb(r.f6.sockets.ours.heapPer), kb(r.f6.sockets.bare.heapPer), x(r.f6.sockets.ratio), '<= 30 KB',
      r.f6.sockets.ours.heapPer <= 30 * 1024);
    const u = r.f6.runs;
    row('F6 runs', `worker memory per active run parked in a long step (heap of the process and its workflow thread, ${u.ours.n} runs)`,
      kb(u.ours.heapPer + u.ours.threadPer), kb(u.bare.heapPer + u.bare.threadPer), x(u.ratio), '<= 1.5x', Number.isFinite(u.ratio) ? u.ratio <= 1.5 : null);
  }
  if (r.f7) {
    const m = median(r.f7.monitor);
    const slower = Math.max(median(r.f7.webhook), median(r.f7.push));
    row('F7', `notifications: run.completed -> webhook and Web Push at their receivers, p50 (p99) over ${r.f7.runs} runs; baseline: the monitor's run.completed frame`,
      `webhook ${f(median(r.f7.webhook))} ms (${f(percentile(r.f7.webhook, 99))} ms), push ${f(median(r.f7.push))} ms (${f(percentile(r.f7.push, 99))} ms)`,
      `${f(m)} ms (${f(percentile(r.f7.monitor, 99))} ms)`, x(slower / m), '<= 1.5x (p50, the slower channel)', slower / m <= 1.5);
  }
  if (r.f8) {
    const o = median(r.f8.ours);
    const b = median(r.f8.bare);
    row('F8', `time to first step: POST /tasks -> the first step's dispatch at the device, p50 (p99) over ${r.f8.runs} runs; baseline: client start() -> the first activity's frame`,
      `${f(o)} ms (${f(percentile(r.f8.ours, 99))} ms)`, `${f(b)} ms (${f(percentile(r.f8.bare, 99))} ms)`, x(o / b), `<= ${F8_TARGET}x (p50)`, o / b <= F8_TARGET);
  }
  p('## Figures', '');
  p('| figure | what | ours | bare baseline | ratio | target | |', '| --- | --- | --- | --- | --- | --- | --- |', ...rows, '');
  p('Ratios are ours / bare: above 1 is better for throughput (F1, F4, F5), worse for time and',
    'memory (F2, F3, F6, F7, F8).', '');
  if (r.skipped.length) p(`Left out by the time budget of this mode: ${r.skipped.join('; ')}.`, '');

  // ---- growth ----
  p('## How cost grows', '');
  if (r.f1.length) {
    p('F1, throughput by concurrent runs (closed loop: each loop starts its next run when the last one ended):', '');
    p('Bare: the same 3 steps, each a round trip to a bare device (the verdict). Temporal alone: 3 trivial activities, no device (for information).', '');
    p('| concurrent runs | ours runs/s | bare runs/s | ratio | Temporal alone runs/s | ratio to Temporal alone | ours p50 / p99 run | bare p50 / p99 run | Temporal alone p50 / p99 run | runs (ours / bare / alone) |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const l of r.f1) {
      p(`| ${l.concurrency} | ${f(l.ours.perS, 2)} | ${f(l.bare.perS, 2)} | ${x(l.ratio)} | ${f(l.alone.perS, 2)} | ${f(l.aloneRatio, 2)}x | ${f(l.ours.p50Ms, 0)} / ${f(l.ours.p99Ms, 0)} ms | ${f(l.bare.p50Ms, 0)} / ${f(l.bare.p99Ms, 0)} ms | ${f(l.alone.p50Ms, 0)} / ${f(l.alone.p99Ms, 0)} ms | ${l.ours.runs} / ${l.bare.runs} / ${l.alone.runs} |`);
    }
    p('');
    p('CPU time per run by process, ms (from /proc: the Temporal dev server, the PostgreSQL server\'s processes and its ended backends, our',
      'server process with its API, gateway and task worker or the bare worker and ws server, split by thread, and the',
      'bench driver with its simulated devices (ours or the bare ones) and REST or Temporal client). Under load the cores are the',
      'bound, so the ratio follows the total. The server process hosts every side: the others idle.', '');
    p('| concurrent runs | side | Temporal | PostgreSQL | server | server: main thread | server: workflow threads | server: Temporal core | server: V8 helpers | driver | total |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const l of r.f1) {
      for (const [side, c] of [['ours', l.cpu.ours], ['bare', l.cpu.bare], ['Temporal alone', l.cpu.alone]] as const) {
        const t = c.threads;
        p(`| ${l.concurrency} | ${side} | ${f(c.temporal)} | ${f(c.postgres)} | ${f(c.server)} | ${f(t.main)} | ${f(t.workflows)} | ${f(t.core)} | ${f(t.v8)} | ${f(c.driver)} | ${f(c.temporal + c.postgres + c.server + c.driver)} |`);
      }
    }
    p('');
  }
  if (r.f4.length) {
    p(`F4, fan-out by monitors (one run of ${r.sizes.f4Steps} steps, ${r.f4[0].events} durable events of ~${r.f4[0].frameBytes} bytes):`, '');
    p('| monitors | ours ev/s | bare ev/s | ratio | ours: all subscribed after | live: history polls | live spread p50 / p99: ours | live spread: bare | live event -> last monitor p50 / p99: ours | live event -> last monitor: bare |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const l of r.f4) {
      p(`| ${int(l.monitors)} | ${int(l.ours.perS)} | ${int(l.bare.perS)} | ${x(l.ratio)} | ${f(l.ours.subscribedMs, 0)} ms | ${l.live.polls ?? 'n/a'} | ${f(l.live.spreadP50)} / ${f(l.live.spreadP99)} ms | ${f(l.bareLive.spreadP50)} / ${f(l.bareLive.spreadP99)} ms | ${f(l.live.lagP50)} / ${f(l.live.lagP99)} ms | ${f(l.bareLive.lagP50)} / ${f(l.bareLive.lagP99)} ms |`);
    }
    p('', 'Live: ours from the event\'s time in the workflow (through the mirror, its notice and the run\'s one history poll); the bare',
      'ws server sends the same frames at the pace ours arrived, each to every socket at once, timed from its send.', '');
  }

  // ---- details ----
  p('## Details', '');
  if (r.f2) {
    p('### F2: per step and per run', '');
    p('| medians at concurrency 1 | ours | bare | added |', '| --- | --- | --- | --- |');
    p(`| run of 1 step | ${f(r.f2.ours.oneMs)} ms | ${f(r.f2.bare.oneMs)} ms | +${f(r.f2.addedPerRunMs)} ms per run |`);
    p(`| run of ${r.f2.steps} steps | ${f(r.f2.ours.longMs)} ms | ${f(r.f2.bare.longMs)} ms | |`);
    p(`| one more step (slope) | ${f(r.f2.ours.perStepMs)} ms | ${f(r.f2.bare.perStepMs)} ms | **+${f(r.f2.addedPerStepMs)} ms per step** |`, '');
  }
  if (r.f2 && r.f2.oursHistory && r.f2.bareHistory) {
    const o = r.f2.oursHistory;
    const b = r.f2.bareHistory;
    p(`### F2: where a ${r.f2.steps}-step run spends its time`, '');
    p(`The median run, read back from its Temporal history. Ours: ${f(r.f2.ours.longMs, 0)} ms seen`,
      `by the client, of which ${f(o.durationMs, 0)} ms inside the workflow (history) and ${f(r.f2.oursOutsideMs, 0)} ms outside`,
      `it (POST /tasks, starting the workflow, reading the result). Bare: ${f(r.f2.bare.longMs, 0)} ms, ${f(b.durationMs, 0)} ms inside.`,
      `One device step takes ${f(o.stepCycleMs, 1)} ms from one dispatch to the next (bare: ${f(b.stepCycleMs, 1)} ms from one activity to the next).`, '');
    p('| | ours | bare |', '| --- | --- | --- |');
    p(`| history events | ${o.events} | ${b.events} |`);
    p(`| workflow tasks (count, mean queue + run) | ${o.workflowTasks.count}, ${f(o.workflowTasks.queueMs)} + ${f(o.workflowTasks.runMs)} ms | ${b.workflowTasks.count}, ${f(b.workflowTasks.queueMs)} + ${f(b.workflowTasks.runMs)} ms |`);
    p(`| signals received | ${o.signals} | ${b.signals} |`);
    const types = new Set([...o.activities.map((a) => a.type), ...b.activities.map((a) => a.type)]);
    for (const t of types) {
      const a = o.activities.find((y) => y.type === t);
      const c = b.activities.find((y) => y.type === t);
      const cell = (s?: { count: number; queueMs: number; runMs: number; local?: boolean }) =>
        (!s ? '-' : s.local ? `${s.count} x, local (inside a workflow task)` : `${s.count} x (${f(s.queueMs)} queue + ${f(s.runMs)} run) ms`);
      p(`| activity \`${t}\` | ${cell(a)} | ${cell(c)} |`);
    }
    p('');
  }
  if (r.f3) {
    p('### F3: control latency', '');
    p('| | p50 | p99 | samples |', '| --- | --- | --- | --- |');
    p(`| ours: POST pause -> step/pause on the device | ${f(median(r.f3.pause))} ms | ${f(percentile(r.f3.pause, 99))} ms | ${r.f3.pause.length} |`);
    p(`| ours: POST resume -> step/resume on the device | ${f(median(r.f3.resume))} ms | ${f(percentile(r.f3.resume, 99))} ms | ${r.f3.resume.length} |`);
    p(`| bare: signal -> activity -> ws frame | ${f(median(r.f3.bare))} ms | ${f(percentile(r.f3.bare, 99))} ms | ${r.f3.bare.length} |`);
    p('', `p99 ratio (pause / bare): ${x(percentile(r.f3.pause, 99) / percentile(r.f3.bare, 99))}. ${r.f3.conflicts} control requests were answered 409 because the mirror had not caught up with the previous action yet, and were sent again (not counted).`, '');
  }
  if (r.f8 && r.f8.oursPath && r.f8.barePath) {
    const o = r.f8.oursPath;
    const b = r.f8.barePath;
    p('### F8: where the time to first step goes', '');
    p('The median run of each side, read back from its Temporal history (the history\'s times and the driver\'s are the same machine\'s clock).', '');
    p('| ms | ours | bare |', '| --- | --- | --- |');
    p(`| request (ours: POST /tasks; bare: start()) -> workflow started | ${f(o.submitMs)} | ${f(b.submitMs)} |`);
    p(`| workflow started -> first activity scheduled | ${f(o.toScheduledMs)} | ${f(b.toScheduledMs)} |`);
    p(`| of which workflow tasks (count: queue + run) | ${o.workflowTasks}: ${f(o.wftQueueMs)} + ${f(o.wftRunMs)} | ${b.workflowTasks}: ${f(b.wftQueueMs)} + ${f(b.wftRunMs)} |`);
    p(`| first activity scheduled -> started (its task queue) | ${f(o.activityQueueMs)} | ${f(b.activityQueueMs)} |`);
    p(`| activity started -> frame at the client (ours: the device's step/dispatch) | ${f(o.deliverMs)} | ${f(b.deliverMs)} |`);
    p(`| total | ${f(o.totalMs)} | ${f(b.totalMs)} |`, '');
  }
  if (r.f5) {
    p('### F5: REST', '');
    p('| | req/s | p50 | p99 | requests | non-2xx | errors |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, c] of [['ours: GET /api/v1/tasks/:id', r.f5.ours], ['bare: koa + one pg query by id', r.f5.bare]] as const) {
      p(`| ${name} | ${int(c.perS)} | ${f(c.p50Ms)} ms | ${f(c.p99Ms)} ms | ${int(c.requests)} | ${c.non2xx} | ${c.errors} |`);
    }
    p('');
    p('CPU time per 1,000 requests by process, ms (as in F1; the driver is autocannon):', '');
    p('| side | PostgreSQL | server | server: main thread | driver | total |', '| --- | --- | --- | --- | --- | --- |');
    for (const [side, c] of [['ours', r.f5.cpu.ours], ['bare', r.f5.cpu.bare]] as const) {
      p(`| ${side} | ${f(c.postgres)} | ${f(c.server)} | ${f(c.threads.main)} | ${f(c.driver)} | ${f(c.postgres + c.server + c.driver)} |`);
    }
    p('');
  }
  if (r.f6) {
    const s = r.f6.sockets;
    const u = r.f6.runs;
    p('### F6: memory', '');
    p('Measured in the server process, before and after, with full GCs first: `gc()` on the main thread',
      '(heap + external) and on each Temporal workflow thread (started through scripts/bench/thread-probe.ts,',
      'which answers with its own heap). RSS is shown for reference only: freed pages are not handed back',
      'at once, so it is noisy.', '');
    p('| | ours main | bare main | ours workflow thread | bare workflow thread | ours RSS | bare RSS |',
      '| --- | --- | --- | --- | --- | --- | --- |');
    p(`| per idle socket (${s.ours.n}) | ${kb(s.ours.heapPer)} | ${kb(s.bare.heapPer)} | ${kb(s.ours.threadPer)} | ${kb(s.bare.threadPer)} | ${kb(s.ours.rssPer)} | ${kb(s.bare.rssPer)} |`);
    p(`| per parked run (${u.ours.n}) | ${kb(u.ours.heapPer)} | ${kb(u.bare.heapPer)} | ${kb(u.ours.threadPer)} | ${kb(u.bare.threadPer)} | ${kb(u.ours.rssPer)} | ${kb(u.bare.rssPer)} |`);
    p('');
  }
  if (r.profiles.length) {
    p('### CPU profiles of the figures that missed', '');
    p('Our side of the figure repeated briefly with the V8 sampling profiler on in the server process;',
      'self time (callees not included: async code has no useful call tree), share of the non-idle samples.', '');
    for (const pr of r.profiles) {
      p(`**${pr.figure}** (${pr.what}; ${f(pr.summary.busyMs, 0)} ms busy of ${f(pr.summary.totalMs, 0)} ms sampled)`, '');
      p('| area | self | function | self |', '| --- | --- | --- | --- |');
      const s = pr.summary;
      for (let i = 0; i < Math.min(10, Math.max(s.areas.length, s.functions.length)); i++) {
        const a = s.areas[i];
        const fn = s.functions[i];
        p(`| ${a ? a.area : ''} | ${a ? `${f(a.pct, 0)}%` : ''} | ${fn ? `\`${fn.name}\` ${fn.where}` : ''} | ${fn ? `${f(fn.pct, 0)}%` : ''} |`);
      }
      p('');
    }
  }
  if (r.f5Layers.length) {
    p('### F5: the request path in layers', '');
    p('Our API node answering cheaper requests the same way (autocannon, same connections): the difference in',
      'time per request between two rows is what the added layer costs.', '');
    p('| request | what it runs | req/s | ms per request (1 / rate) |', '| --- | --- | --- | --- |');
    for (const l of r.f5Layers) p(`| \`${l.path}\` | ${l.what} | ${int(l.perS)} | ${f(1000 / l.perS, 2)} |`);
    p('');
  }

  p('## Method', '');
  p(METHOD, '');

  p('## Analysis', '');
  p(ANALYSIS_START, keptAnalysis(previous) ?? DEFAULT_ANALYSIS, ANALYSIS_END, '');
  return out.join('\n');
}

function allPollsEqual(levels: F4Level[]): boolean {
  const polls = levels.map((l) => l.live.polls).filter((n): n is number => typeof n === 'number');
  if (!polls.length) return false;
  // One poller per run: its polls do not grow with the number of monitors.
  return Math.max(...polls) <= Math.min(...polls) * 1.5 + 2;
}

function keptAnalysis(previous: string): string | null {
  const a = previous.indexOf(ANALYSIS_START);
  const b = previous.indexOf(ANALYSIS_END);
  if (a < 0 || b < a) return null;
  return previous.slice(a + ANALYSIS_START.length, b).trim();
}

const METHOD = `One command, \`npm run bench\` (\`-- --quick\`, \`-- --smoke\`), starts a Temporal dev server (in
memory, free ports), creates and migrates a fresh database \`jarvis_bench_<ts>\` (dropped at the end),
builds both workflow bundles and forks the system under test, \`scripts/bench/server.ts\`, with
\`--expose-gc\`: our API node (REST, /ws, the device-step worker) and task worker, and next to them in
the same process the bare baselines: a Temporal worker for \`scripts/bench/bare-workflows.ts\` on its own
task queue with the task worker's settings, a bare koa app and a bare \`ws\` server. The driver
holds the clients: simulated devices (the reference \`DeviceClient\` with an echo handler), the bare
devices (plain \`ws\` sockets that echo), monitor sockets, autocannon. Its harness, \`scripts/bench/run.ts\`, starts the system, shares the time
budget among the figures and writes the report; each figure is one module of \`scripts/bench/figures/\`
(\`f1-throughput.ts\` to \`f8-first-step.ts\`, and \`profiles.ts\`) over the runs and loops of
\`scripts/bench/harness.ts\`. The server runs as the production setup does (Dockerfile,
docker-compose.yml): \`NODE_ENV=production\` (no response-schema check), \`LOG_LEVEL\` at its default
(\`info\`: an access log line per request, JSON lines to a file), a JWT secret and VAPID keys of its
own; the settings the load needs beyond the defaults, and only as far as it needs them, are in
the header above (the per-IP and per-user rate limits sized so that F5 at 20,000 requests/s
would not be refused, login attempts for F5's users, monitor sockets for F4). Loopback only;
every loop is bounded in runs and seconds.

- **F1**: closed loop, one simulated device per loop (its device lane serializes runs per PC). Ours:
  \`POST /tasks\` for a 3-step workflow of \`bench.echo\` steps, then the workflow's result; each step
  is an activity that sends the step to the loop's simulated PC over its WebSocket and waits for the
  answer. Bare, the baseline: start \`bareDeviceStepsWorkflow\` and wait for its result; its 3 steps are
  activities that each send \`{id, step}\` over a plain \`ws\` socket to the loop's bare device in the
  driver (one socket per loop, as ours has one device per loop), which answers \`{id, output}\` at
  once, and resolve on that answer (no persistence, no auth, no protocol beyond the id). That is the
  product at its most minimal: every step of ours runs on the person's PC, so any implementation
  makes the same round trip, and the verdict compares like with like. Temporal alone, for
  information: \`bareStepsWorkflow\`, 3 activities that return their input, no device; the ratio to
  it also charges us for the device round trip. The three sides run one after the other at each
  level. Runs/s = runs / time to the last result.
- **F2**: at concurrency 1, runs of 1 step and of N steps, ours and bare interleaved; bare is F1's
  baseline (each step a round trip to a bare device), since one more step of any implementation
  includes the trip to the PC. Per side the slope (median N-step run - median 1-step run) / (N - 1)
  is what one more step costs, and the figure is ours minus bare. The fixed cost of a run (lane,
  submission, last mirror write) cancels out of the slope and is reported beside it (1-step runs,
  ours - bare). The median N-step runs' histories give the breakdown.
- **F3**: a run holds its device in a step that waits until aborted; \`POST /tasks/:id/pause\` then
  \`/resume\`, timed from the request to the \`step/pause\` (\`step/resume\`) frame at the device. Bare: a
  signal to \`bareControlWorkflow\`, whose activity writes a frame to a ws socket the driver waits on.
- **F4**: M monitors (user token on /ws) subscribe to a run as it is created and watch it (live:
  history polls of the run's stream, spread between the first and the last monitor getting an event).
  Then all M subscribe again with \`after_seq\` 0 at once: events/s = M x events / time until the last
  monitor has every event. Bare: M sockets each send one "subscribe" to a bare ws server that answers
  with the same frames (byte for byte) the run produced. A burst lasts a fraction of a second, so
  each side bursts several times (5 in the full run), taking turns, and the median burst counts.
  Live baseline: the bare ws server sends the same frames, spaced as ours reached the first
  monitor, each to all M sockets at once (spread from first to last socket, and send -> last
  socket). Every level is measured and the target holds at each.
- **F5**: 100 users (25 in the quick run, 5 in the smoke run), each logged in through the API (its own token and
  session) with a finished 3-step run of its own; autocannon sends request i to user i mod n:
  \`GET /api/v1/tasks/:id\` with that user's token (JWT, session check, rate limits, task and
  steps), then the bare app's \`GET /tasks/:id\` of the same tasks (\`select * from tasks where id = $1\`, JSON),
  in rounds taking turns, once the work the figures before it left behind has drained (Temporal,
  PostgreSQL and the server under a fifth of a core for a second, 20 s at most). When the
  PostgreSQL server runs without autovacuum (the header says so), the tables the figures before
  wrote are vacuumed first, as autovacuum would have done by then.
- **F6**: memory of the server process after forced GCs (main thread and workflow threads; the server
  runs with \`--no-flush-bytecode\` so that V8 does not free compiled code in the middle of a
  measurement), before and after: N device sockets (device tokens, presence recorded) vs N bare ws
  sockets; K bare workflows parked in a long step (an activity that holds, heartbeating every 2 s
  as our dispatch does, until cancelled), then K of our runs parked in a held step (one per
  device), with the N devices connected and idle throughout. \`BENCH_HEAP_DIR=<dir>\` writes heap
  snapshots of every thread before and after our runs park.
- **F7**: one run at a time of a 1-step workflow, with a webhook (kinds \`run.completed\`) and a Web
  Push subscription registered through the API, to receivers on 127.0.0.1 that check what they get
  (the Standard Webhooks signature; the VAPID signature, and the payload decrypted with the
  browser's keys). Each latency is from the \`run.completed\` event's time to the monitor's frame (a
  monitor subscribed to the run), to the webhook request and to the push request at their receivers;
  the ratio is the slower channel's p50 over the frame's. A delivery starts when the stored
  notification's outbox notice (\`jarvis_outbox\`) wakes the dispatcher, and is a Temporal workflow
  each, sending through a local activity; the server process holds the task worker beside the API
  node on one connection, as \`npm start\` does, so the start is eager.
- **F8**: one run at a time of the 3-step workflow, ours and bare taking turns: from \`POST /tasks\` to
  the first step's \`step/dispatch\` frame at the device; bare: from the client's \`start()\` to the
  first activity's frame on a ws socket (\`bareFirstStepWorkflow\`). The median run of each side is
  read back from its history to split the time (submission, workflow tasks, the activity's queue,
  the frame).`;
