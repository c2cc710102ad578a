// Every migration, in order. Listed explicitly so the migrator needs no file discovery.
import { Migration20261123000001_initial } from './Migration20261123000001_initial.ts';
import { Migration20261123000002_schedules } from './Migration20261123000002_schedules.ts';
import { Migration20261123000003_logs_files } from './Migration20261123000003_logs_files.ts';
import { Migration20261123000004_sessions } from './Migration20261123000004_sessions.ts';
import { Migration20261123000005_device_presence } from './Migration20261123000005_device_presence.ts';
import { Migration20261130000006_device_lanes } from './Migration20261130000006_device_lanes.ts';
import { Migration20261206000007_file_chunks } from './Migration20261206000007_file_chunks.ts';
import { Migration20261206000008_account_limits } from './Migration20261206000008_account_limits.ts';
import { Migration20261206000009_step_progress } from './Migration20261206000009_step_progress.ts';
import { Migration20261206000010_device_status } from './Migration20261206000010_device_status.ts';
import { Migration20261206000011_step_artifacts } from './Migration20261206000011_step_artifacts.ts';
import { Migration20261206120000_notifications } from './Migration20261206120000_notifications.ts';
import { Migration20261206130000_lane_free_grant } from './Migration20261206130000_lane_free_grant.ts';
import { Migration20261206180000_delivery_permits } from './Migration20261206180000_delivery_permits.ts';
import { Migration20261206190000_target_limits } from './Migration20261206190000_target_limits.ts';

export const MIGRATIONS = [
  { name: 'Migration20261123000001_initial', class: Migration20261123000001_initial },
  { name: 'Migration20261123000002_schedules', class: Migration20261123000002_schedules },
  { name: 'Migration20261123000003_logs_files', class: Migration20261123000003_logs_files },
  { name: 'Migration20261123000004_sessions', class: Migration20261123000004_sessions },
  { name: 'Migration20261123000005_device_presence', class: Migration20261123000005_device_presence },
  { name: 'Migration20261130000006_device_lanes', class: Migration20261130000006_device_lanes },
  { name: 'Migration20261206000007_file_chunks', class: Migration20261206000007_file_chunks },
  { name: 'Migration20261206000008_account_limits', class: Migration20261206000008_account_limits },
  { name: 'Migration20261206000009_step_progress', class: Migration20261206000009_step_progress },
  { name: 'Migration20261206000010_device_status', class: Migration20261206000010_device_status },
  { name: 'Migration20261206000011_step_artifacts', class: Migration20261206000011_step_artifacts },
  { name: 'Migration20261206120000_notifications', class: Migration20261206120000_notifications },
  { name: 'Migration20261206130000_lane_free_grant', class: Migration20261206130000_lane_free_grant },
  { name: 'Migration20261206180000_delivery_permits', class: Migration20261206180000_delivery_permits },
  { name: 'Migration20261206190000_target_limits', class: Migration20261206190000_target_limits },
];
