// The mirror's fold of run events (src/domain/task-mirror.ts): pure, so tested without a database.
import { describe, expect, it } from '@jest/globals';
import { applyEvents, type TaskMirror } from '../../src/domain/task-mirror.ts';
import type { RunEvent } from '../../workflows/api.ts';

const fresh = (): TaskMirror => ({ status: 'pending', progress: 0, lastSeq: 0, createdAt: new Date(0) });
const ev = (seq: number, kind: RunEvent['kind'], data: Record<string, unknown> = {}): RunEvent => ({ seq, kind, at: seq * 1000, data });

describe('the task mirror fold', () => {
  it('keeps a run paused while it starts to wait for its lane or device (found by the soak)', () => {
    const t = fresh();
    applyEvents(t, [ev(1, 'run.pending', { reason: 'queued' }), ev(2, 'run.paused', { by: 'u' }), ev(3, 'run.pending', { reason: 'device_busy' })]);
    expect(t).toMatchObject({ status: 'paused', statusReason: 'paused_by_user', lastSeq: 3 });
    applyEvents(t, [ev(4, 'run.resumed', { by: 'u' })]);
    expect(t.status).toBe('pending'); // not started yet: it waits again
    applyEvents(t, [ev(5, 'run.pending', { reason: 'device_offline' })]);
    expect(t).toMatchObject({ status: 'pending', statusReason: 'device_offline' });
  });

  it('skips events it has applied (retried writes)', () => {
    const t = fresh();
    applyEvents(t, [ev(1, 'run.pending', { reason: 'queued' }), ev(2, 'run.started')]);
    const steps = applyEvents(t, [ev(2, 'run.started'), ev(1, 'run.pending', { reason: 'queued' })]);
    expect(steps).toEqual([]);
    expect(t).toMatchObject({ status: 'running', lastSeq: 2 });
  });
});
