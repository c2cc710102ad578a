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

      -- Gives the device to its first waiting run (the caller holds the lane's row lock).
      create function lane_grant_next(p_device uuid) returns uuid language plpgsql as $fn$
      declare v_task uuid; v_workflow varchar(255);
      begin
        delete from lane_requests where task_id = (
          select task_id from lane_requests where device_id = p_device
          order by priority_rank desc, submitted_at, arrival limit 1)
        returning task_id, workflow_id into v_task, v_workflow;
        if v_task is null then return null; end if;
        update device_lanes set holder_task_id = v_task, holder_workflow_id = v_workflow,
          holder_notified = false, granted_at = now() where device_id = p_device;
        return v_task;
      end $fn$;

      -- A run asks for its device: 'granted' (it holds it, and knows), 'queued', or
      -- 'queued_other' (the device was free and went to a run ahead of it, to be signalled).
      create function lane_acquire(p_device uuid, p_task uuid, p_workflow varchar, p_rank smallint, p_submitted bigint)
      returns text language plpgsql as $fn$
      declare v_holder uuid; v_next uuid;
      begin
        insert into device_lanes (device_id) values (p_device) on conflict do nothing;
        select holder_task_id into v_holder from device_lanes where device_id = p_device for update;
        if v_holder is distinct from p_task then
          insert into lane_requests (task_id, device_id, workflow_id, priority_rank, submitted_at)
          values (p_task, p_device, p_workflow, p_rank, p_submitted) on conflict (task_id) do nothing;
          if v_holder is not null then return 'queued'; end if;
          v_next := lane_grant_next(p_device);
          if v_next is distinct from p_task then
            return case when v_next is null then 'queued' else 'queued_other' end;
          end if;
        end if;
        update device_lanes set holder_notified = true where device_id = p_device;
        return 'granted';
      end $fn$;

      -- A run gives up its hold or its place; the next run holds the device (not told yet).
      create function lane_release(p_device uuid, p_task uuid) returns void language plpgsql as $fn$
      declare v_holder uuid;
      begin
        delete from lane_requests where task_id = p_task;
        select holder_task_id into v_holder from device_lanes where device_id = p_device for update;
        if v_holder is distinct from p_task then return; end if;
        update device_lanes set holder_task_id = null, holder_workflow_id = null, holder_notified = false,
          granted_at = null where device_id = p_device;
        perform lane_grant_next(p_device);
      end $fn$;
    `);
  }

  override down(): void {
    this.addSql(`drop function lane_release(uuid, uuid); drop function lane_acquire(uuid, uuid, varchar, smallint, bigint);
      drop function lane_grant_next(uuid); drop table lane_requests; drop table device_lanes;`);
  }
}
