// Entry point bundled for the task workers: every workflow type they run.
export { taskRunWorkflow } from './task-run.ts';
export { scheduledRunWorkflow } from './scheduled-run.ts';
export { artifactRetentionWorkflow } from './artifact-retention.ts';
export { notificationDeliveryWorkflow } from './notification-delivery.ts';
