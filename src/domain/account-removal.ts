// Deleting an account: what lives outside PostgreSQL goes too, in an order that loses nothing.
// Temporal Schedules first, so no firing submits a run meanwhile; then the account's sessions
// end (every node hears), so nobody submits or steers a run either. Then its unfinished runs
// are cancelled the way the person would cancel them (the cancel signal: the step in flight
// gets `step/abort` on whichever node holds the device) and write their last events while their
// rows still exist; a run that has not ended within `runsEndWithinMs` is terminated. Only then
// do the rows go (one transaction, by the schema's cascades, uploaded files' bytes with their
// rows), telling every node to close the devices' connections (4401) on commit.
import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import * as usersDb from '../db/users.ts';
import type { OwnedRepos } from '../db/owned.ts';
import { cancelSignal, type ControlRequest } from '../../workflows/api.ts';
import { deleteTemporalSchedule } from './schedules.ts';
import type { Sessions } from './sessions.ts';

export interface AccountRemovalDeps {
  temporal: Client;
  sessions: Sessions;
  /** How long the cancelled runs have to end before they are terminated. */
  runsEndWithinMs: number;
}

export interface AccountRemoval {
  /** Runs that ended by their cancellation. */
  runs_cancelled: number;
  /** Runs terminated: not ended within the bound, or started while the account was going. */
  runs_terminated: number;
  schedules_removed: number;
  devices_disconnected: number;
}

const REASON = 'account deleted';

export async function removeAccount(repos: OwnedRepos, deps: AccountRemovalDeps): Promise<AccountRemoval> {
  const { temporal } = deps;
  const schedules = await usersDb.scheduleIdsOf(repos);
  // A failure here (503) leaves every row and session: the caller may try again.
  await Promise.all(schedules.map((id) => deleteTemporalSchedule(temporal, id)));

  deps.sessions.forget(await usersDb.revokeSessions(repos, REASON));

  const who: ControlRequest = { by: repos.userId, client: 'account deletion', reason: REASON };
  const deadline = Date.now() + deps.runsEndWithinMs;
  const outcomes = await Promise.all((await usersDb.unfinishedRuns(repos)).map((id) => cancelRun(temporal, id, who, deadline)));

  // Every row goes by cascade from the user's (file_chunks follow their files' rows).
  const gone = await usersDb.removeAccount(repos);
  deps.sessions.forget(gone.sessions);

  // Runs the mirror still calls unfinished: ones terminated above (again: harmless), or one
  // submitted before the sessions ended that was not listed. Terminated: a run whose rows are
  // gone writes nothing (its writes find no task row and succeed as no-ops) and has no device
  // to reach. A run Temporal cannot reach now is not retried: the account cannot ask again.
  const handled = new Set(outcomes.map((o) => o.id));
  const late = await Promise.all(gone.runs.filter((id) => !handled.has(id)).map((id) => terminate(temporal, id)));
  return {
    runs_cancelled: outcomes.filter((o) => o.ended === 'cancelled').length,
    runs_terminated: outcomes.filter((o) => o.ended === 'terminated').length + late.filter(Boolean).length,
    schedules_removed: schedules.length,
    devices_disconnected: gone.devices.length,
  };
}

/** Cancels a run and waits for it to end until `deadline`; then terminates it. */
async function cancelRun(temporal: Client, id: string, who: ControlRequest, deadline: number): Promise<{ id: string; ended: 'cancelled' | 'terminated' | 'over' | 'unreachable' }> {
  const handle = temporal.workflow.getHandle(id);
  try {
    await handle.signal(cancelSignal, who);
    await temporal.connection.withDeadline(deadline, () => handle.result());
    return { id, ended: 'cancelled' };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { id, ended: 'over' };
    // It ended otherwise meanwhile (failed, terminated by an operator).
    if (err instanceof WorkflowFailedError) return { id, ended: 'over' };
  }
  return { id, ended: (await terminate(temporal, id)) ? 'terminated' : 'unreachable' };
}

async function terminate(temporal: Client, id: string): Promise<boolean> {
  return temporal.workflow.getHandle(id).terminate(REASON).then(() => true, () => false);
}
