import { Migration } from '@mikro-orm/migrations';

/** Logs reported by users and devices, and uploaded files (their bytes live under DATA_DIR). */
export class Migration20261123000003_logs_files extends Migration {
  override name = 'Migration20261123000003_logs_files';

  override up(): void {
    this.addSql(`
      create table logs (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        task_id uuid references tasks(id) on delete cascade,
        device_id uuid,
        level varchar(8) not null check (level in ('debug','info','warn','error')),
        category varchar(16) not null check (category in ('system','task','device','message','error')),
        message text not null,
        details jsonb,
        created_at timestamptz not null default now()
      );
      create index logs_user_idx on logs (user_id, created_at desc, id desc);
      create index logs_task_idx on logs (task_id, created_at) where task_id is not null;

      create table files (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        name varchar(255) not null,
        content_type varchar(100) not null,
        size_bytes bigint not null check (size_bytes >= 0),
        sha256 char(64) not null,
        storage_key varchar(255) not null unique,
        created_at timestamptz not null default now()
      );
      create index files_user_idx on files (user_id, created_at desc);
    `);
  }

  override down(): void {
    this.addSql('drop table if exists files;');
    this.addSql('drop table if exists logs;');
  }
}
