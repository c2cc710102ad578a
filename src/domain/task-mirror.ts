// How run events change the PostgreSQL mirror of a task. Pure: the persistence activity and
// the reconciler apply the same rules.
import type { RunEvent, RunStatus } from '../../workflows/api.ts';
import type { StepFields } from '../db/run-mirror.ts';

export interface TaskMirror {
  status: RunStatus;
  statusReason?: string | null;
  currentNode?: string | null;
  progress: number;
  result?: unknown;
  error?: { code: string; message: string; [k: string]: unknown } | null;
  lastSeq: number;
  startedAt?: Date | null;
  finishedAt?: Date | null;
  durationMs?: number | null;
  createdAt: Date;
}

/** A step attempt as one event leaves it (folded into a StepRow by the run mirror). */
export interface StepWrite extends StepFields {
  output?: unknown;
  error?: unknown;
  at: Date;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Applies events (in seq order) to the mirror; returns the step rows they touch. */
export function applyEvents(task: TaskMirror, events: RunEvent[]): StepWrite[] {
  const steps: StepWrite[] = [];
  for (const ev of events) {
    if (ev.seq <= task.lastSeq) continue; // already applied (activity retried)
    task.lastSeq = ev.seq;
    const at = new Date(ev.at);
    const d = ev.data;
    switch (ev.kind) {
      case 'run.pending':
        // A paused run that starts waiting (for its lane, for its device) stays paused: the
        // user resumes it, and only then does it wait as pending.
        if (task.status === 'paused') break;
        task.status = 'pending';
        task.statusReason = str(d.reason);
        break;
      case 'run.started':
        task.status = 'running';
        task.statusReason = null;
        task.startedAt ??= at;
        break;
      case 'run.paused':
        task.status = 'paused';
        task.statusReason = 'paused_by_user';
        break;
      case 'run.resumed':
        task.status = task.startedAt ? 'running' : 'pending';
        task.statusReason = null;
        break;
      case 'run.waiting_approval':
        task.statusReason = 'waiting_approval';
        task.currentNode = str(d.step_id);
        break;
      case 'run.approval_decided':
        if (task.statusReason === 'waiting_approval') task.statusReason = null;
        break;
      case 'step.dispatched':
        task.currentNode = str(d.step_id);
        steps.push({
          key: String(d.key), nodeId: String(d.step_id), nodeType: String(d.type), name: str(d.name),
          attempt: Number(d.attempt), status: 'running', at,
        });
        break;
      case 'step.completed':
        if (typeof d.progress === 'number') task.progress = d.progress;
        steps.push({
          key: String(d.key), nodeId: String(d.step_id), nodeType: '', name: null,
          attempt: Number(d.attempt), status: 'completed', output: d.output ?? null, at,
        });
        break;
      case 'step.failed':
        steps.push({
          key: String(d.key), nodeId: String(d.step_id), nodeType: '', name: null,
          attempt: Number(d.attempt), status: 'failed', error: d.error ?? null, at,
        });
        break;
      case 'run.completed':
      case 'run.failed':
      case 'run.cancelled': {
        task.status = ev.kind === 'run.completed' ? 'completed' : ev.kind === 'run.failed' ? 'failed' : 'cancelled';
        task.statusReason = ev.kind === 'run.cancelled' ? str(d.reason) : null;
        // Outputs so far, also for failed and cancelled runs (a retry from the failed step uses them).
        task.result = d.outputs ?? task.result ?? null;
        if (ev.kind === 'run.completed') task.progress = 100;
        if (ev.kind === 'run.failed') task.error = (d.error as TaskMirror['error']) ?? null;
        task.finishedAt = at;
        task.durationMs = at.getTime() - (task.startedAt ?? task.createdAt).getTime();
        break;
      }
      default:
        break;
    }
  }
  return steps;
}
