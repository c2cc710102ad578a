import { Migration } from '@mikro-orm/migrations';

/**
 * `lane_acquire` grants a free device with nobody waiting for it in one write of the lane's row.
 * Before, every run went through the queue even then: a `lane_requests` row inserted (two index
 * entries and a foreign key check), deleted again by `lane_grant_next`, and the lane's row
 * written twice (holder, then `holder_notified`). The answer and the lane's state after it are
 * the same; with a holder or anyone waiting, the run queues as before.
 */
export class Migration20261206130000_lane_free_grant extends Migration {
  override name = 'Migration20261206130000_lane_free_grant';

  override up(): void {
    this.addSql(`
      create or replace function lane_acquire(p_device uuid, p_task uuid, p_workflow varchar, p_rank smallint, p_submitted bigint)
      returns text language plpgsql as $fn$
      declare v_holder uuid; v_next uuid;
      begin
        select holder_task_id into v_holder from device_lanes where device_id = p_device for update;
        if not found then
          insert into device_lanes (device_id) values (p_device) on conflict do nothing;
          select holder_task_id into v_holder from device_lanes where device_id = p_device for update;
        end if;
        if v_holder is null and not exists (select 1 from lane_requests where device_id = p_device) then
          update device_lanes set holder_task_id = p_task, holder_workflow_id = p_workflow,
            holder_notified = true, granted_at = now() where device_id = p_device;
          return 'granted';
        end if;
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
    `);
  }

  override down(): void {
    this.addSql(`
      create or replace function lane_acquire(p_device uuid, p_task uuid, p_workflow varchar, p_rank smallint, p_submitted bigint)
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
    `);
  }
}
