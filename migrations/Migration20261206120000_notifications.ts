import { Migration } from '@mikro-orm/migrations';

/**
 * A user's notifications (issue 17): written with the run events that cause them, one of a kind
 * per event (`task_id`, `seq`, `kind` unique), so a retried batch or sweep never writes a second
 * one. `expires_at`: when an approval.requested's approval times out (its reminder is due before).
 */
export class Migration20261206120000_notifications extends Migration {
  override name = 'Migration20261206120000_notifications';

  override up(): void {
    this.addSql(`
      create table notifications (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        kind varchar(32) not null check (kind in ('run.completed','run.failed','run.cancelled','approval.requested','approval.expiring','device.offline','schedule.run_failed')),
        title varchar(255) not null,
        body text,
        task_id uuid references tasks(id) on delete cascade,
        seq int,
        workflow_id uuid,
        workflow_name varchar(255),
        device_id uuid,
        device_name varchar(255),
        expires_at timestamptz,
        created_at timestamptz not null default now(),
        read_at timestamptz
      );
      create unique index notifications_task_seq_key on notifications (task_id, seq, kind) where task_id is not null;
      create index notifications_expiring_idx on notifications (expires_at) where kind = 'approval.requested';

      create table notification_settings (
        user_id uuid primary key references users(id) on delete cascade,
        channels jsonb not null default '{}',
        quiet_hours jsonb,
        updated_at timestamptz not null default now()
      );
      create index notifications_user_idx on notifications (user_id, created_at desc, id desc);
      create index notifications_user_unread_idx on notifications (user_id) where read_at is null;
    `);
  }

  override down(): void {
    this.addSql('drop table if exists notification_settings;');
    this.addSql('drop table if exists notifications;');
  }
}
