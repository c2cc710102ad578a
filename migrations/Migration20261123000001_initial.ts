import { Migration } from '@mikro-orm/migrations';

/** Users, devices, workflows with immutable versions, tasks, their steps and events. */
export class Migration20261123000001_initial extends Migration {
  override name = 'Migration20261123000001_initial';

  override up(): void {
    this.addSql(`
      create table users (
        id uuid primary key,
        email varchar(254) not null,
        password_hash text not null,
        name varchar(100),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create unique index users_email_key on users (lower(email));

      create table devices (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        device_id varchar(255) not null,
        device_name varchar(255) not null,
        os_type varchar(50),
        os_version varchar(50),
        app_version varchar(50),
        token_hash varchar(64) not null unique,
        capabilities jsonb,
        is_online boolean not null default false,
        node_id varchar(64),
        session_id varchar(64),
        last_online_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (user_id, device_id)
      );

      create table workflows (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        name varchar(255) not null,
        description text,
        category varchar(50),
        tags jsonb not null default '[]',
        current_version integer not null,
        is_archived boolean not null default false,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create index workflows_user_idx on workflows (user_id, updated_at desc);

      create table workflow_versions (
        id uuid primary key,
        workflow_id uuid not null references workflows(id) on delete cascade,
        version integer not null,
        definition jsonb not null,
        parameters jsonb,
        created_at timestamptz not null default now(),
        unique (workflow_id, version)
      );

      create table tasks (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        workflow_id uuid not null references workflows(id) on delete cascade,
        workflow_version_id uuid not null references workflow_versions(id),
        device_id uuid not null references devices(id) on delete cascade,
        status varchar(16) not null check (status in ('pending','running','paused','completed','failed','cancelled')),
        status_reason varchar(255),
        priority varchar(8) not null check (priority in ('high','medium','low')),
        parameters jsonb not null default '{}',
        idempotency_key varchar(255),
        temporal_workflow_id varchar(255) not null,
        temporal_run_id varchar(64),
        current_node varchar(255),
        progress integer not null default 0,
        result jsonb,
        error jsonb,
        last_seq integer not null default 0,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        started_at timestamptz,
        finished_at timestamptz,
        duration_ms integer
      );
      create index tasks_user_created_idx on tasks (user_id, created_at desc, id desc);
      create index tasks_device_status_idx on tasks (device_id, status);
      create unique index tasks_idempotency_key on tasks (user_id, idempotency_key) where idempotency_key is not null;

      create table task_steps (
        id uuid primary key,
        task_id uuid not null references tasks(id) on delete cascade,
        node_id varchar(255) not null,
        node_type varchar(255) not null,
        name varchar(255),
        attempt integer not null,
        key varchar(600) not null unique,
        status varchar(16) not null check (status in ('running','completed','failed','cancelled')),
        output jsonb,
        error jsonb,
        started_at timestamptz not null,
        finished_at timestamptz
      );
      create index task_steps_task_idx on task_steps (task_id, started_at);

      create table task_events (
        task_id uuid not null references tasks(id) on delete cascade,
        seq integer not null,
        kind varchar(64) not null,
        at timestamptz not null,
        data jsonb not null default '{}',
        primary key (task_id, seq)
      );
    `);
  }

  override down(): void {
    this.addSql('drop table if exists task_events, task_steps, tasks, workflow_versions, workflows, devices, users cascade;');
  }
}
