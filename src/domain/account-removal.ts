// Deleting an account: what lives outside PostgreSQL goes too. Temporal Schedules first, so no
// firing submits a run while the rows go; then the rows (one transaction, by the schema's
// cascades, with the sessions revoked); then the unfinished runs are ended, the devices' live
// connections closed. Uploaded files' bytes go with their rows (file_chunks).
import type { Client } from '@temporalio/client';
import * as usersDb from '../db/users.ts';
import type { OwnedRepos } from '../db/owned.ts';
import { deleteTemporalSchedule } from './schedules.ts';
import type { Sessions } from './sessions.ts';

export interface AccountRemovalDeps {
  temporal: Client;
  sessions: Sessions;
  /** Closes a device's live connection on this node (a device on another node finds its row gone). */
  endDevice(deviceId: string): void;
}

export interface AccountRemoval {
  runs_cancelled: number;
  schedules_removed: number;
  devices_disconnected: number;
}

export async function removeAccount(repos: OwnedRepos, deps: AccountRemovalDeps): Promise<AccountRemoval> {
  const { temporal } = deps;
  const schedules = await usersDb.scheduleIdsOf(repos);
  // A failure here (503) leaves every row: the caller may try again.
  await Promise.all(schedules.map((id) => deleteTemporalSchedule(temporal, id)));

  // Every row goes by cascade from the user's, uploaded files' bytes too (file_chunks follow
  // their files' rows).
  const gone = await usersDb.removeAccount(repos);
  deps.sessions.forget(gone.sessions);

  // The rows are gone, so the runs have no one to report to and nothing to record into: they are
  // terminated rather than asked to cancel (a cancel waits for the device's answer, from a device
  // that is being unbound). The device's connection closes with 4401 and its token stops working;
  // no step/abort is sent. A run Temporal cannot reach now is not retried: the account cannot ask
  // again, and such a run finds no rows to write to.
  const ended = await Promise.allSettled(gone.runs.map((workflowId) =>
    temporal.workflow.getHandle(workflowId).terminate('account deleted')));
  for (const id of gone.devices) deps.endDevice(id);
  return { runs_cancelled: ended.filter((r) => r.status === 'fulfilled').length, schedules_removed: schedules.length, devices_disconnected: gone.devices.length };
}
