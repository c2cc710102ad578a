// Where a notification leads: paths on the server (relative to its public URL), the same in the
// REST list, webhooks and pushes.
import type { NotificationKind } from '../db/entities.ts';

/** The REST API's prefix (src/http/route.ts has the router's copy; pushes and webhooks carry links too). */
export const REST_PREFIX = '/api/v1';

export function notificationLinks(taskId: string, kind: NotificationKind) {
  return {
    monitor: `/monitor#task=${taskId}`,
    task: `${REST_PREFIX}/tasks/${taskId}`,
    approval: kind === 'approval.requested' || kind === 'approval.expiring' ? `${REST_PREFIX}/tasks/${taskId}/approval` : null,
  };
}
