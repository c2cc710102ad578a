import { Migration } from '@mikro-orm/migrations';

/**
 * Step artifacts (screenshots first): what a device attaches to the step it is running. The
 * bytes are a file of the user's (`files` + `file_chunks`: the same storage, every node reads it,
 * counted in the same quota); `files.task_id` ties a file to the run it belongs to, so deleting
 * the task deletes its artifacts' files, and each file's chunks and artifact row with it.
 */
export class Migration20261206000011_step_artifacts extends Migration {
  override name = 'Migration20261206000011_step_artifacts';

  override up(): void {
    this.addSql(`
      alter table files add column task_id uuid references tasks(id) on delete cascade;
      create index files_task_idx on files (task_id, created_at) where task_id is not null;

      create table step_artifacts (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        task_id uuid not null references tasks(id) on delete cascade,
        step_id varchar(255) not null,
        attempt int not null check (attempt >= 1),
        step_key varchar(600) not null,
        kind varchar(20) not null check (kind in ('screenshot', 'file')),
        file_id uuid not null unique references files(id) on delete cascade,
        thumbnail_file_id uuid unique references files(id) on delete cascade,
        width int,
        height int,
        created_at timestamptz not null default now()
      );
      create index step_artifacts_task_idx on step_artifacts (task_id, created_at, id);
    `);
  }

  override down(): void {
    this.addSql('drop table if exists step_artifacts;');
    this.addSql('drop index if exists files_task_idx;');
    this.addSql('alter table files drop column task_id;');
  }
}
