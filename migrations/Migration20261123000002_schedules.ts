import { Migration } from '@mikro-orm/migrations';

/** Recurring runs: each row mirrors one Temporal Schedule. */
export class Migration20261123000002_schedules extends Migration {
  override name = 'Migration20261123000002_schedules';

  override up(): void {
    this.addSql(`
      create table schedules (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        workflow_id uuid not null references workflows(id) on delete cascade,
        device_id uuid not null references devices(id) on delete cascade,
        name varchar(255),
        parameters jsonb not null default '{}',
        priority varchar(8) not null check (priority in ('high','medium','low')),
        cron varchar(255),
        interval_seconds integer check (interval_seconds is null or interval_seconds >= 60),
        timezone varchar(64),
        paused boolean not null default false,
        temporal_schedule_id varchar(255) not null unique,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        check ((cron is null) <> (interval_seconds is null))
      );
      create index schedules_user_idx on schedules (user_id, created_at desc);
    `);
  }

  override down(): void {
    this.addSql('drop table if exists schedules;');
  }
}
