import { Migration } from '@mikro-orm/migrations';

/**
 * Device lanes in PostgreSQL (src/domain/device-lanes.ts): which run holds each PC, and the runs
 * waiting for it. Replaces the lane workflow for runs submitted from here on: a free device is
 * granted in the submitting request, with no Temporal round trip.
 */
export class Migration20261130000006_device_lanes extends Migration {
  override name = 'Migration20261130000006_device_lanes';

  override up(): void {
    this.addSql(`
      create table device_lanes (
        device_id uuid primary key references devices(id) on delete cascade,
        holder_task_id uuid,
        holder_workflow_id varchar(255),
        -- Whether the holder's run has been told (by the grant's answer or by a signal).
        holder_notified boolean not null default false,
        granted_at timestamptz
      );

      create table lane_requests (
        task_id uuid primary key,
        device_id uuid not null references devices(id) on delete cascade,
        workflow_id varchar(255) not null,
        priority_rank smallint not null,
        submitted_at bigint not null,
        arrival bigserial not null,
        created_at timestamptz not null default now()
      );
      create index lane_requests_order_idx on lane_requests (device_id, priority_rank desc, submitted_at, arrival);
    `);
  }

  override down(): void {
    this.addSql('drop table lane_requests; drop table device_lanes;');
  }
}
