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
        read_at timestamptz,
        dispatched_at timestamptz
      );
      create unique index notifications_task_seq_key on notifications (task_id, seq, kind) where task_id is not null;
      create index notifications_expiring_idx on notifications (expires_at) where kind = 'approval.requested';
      create index notifications_undispatched_idx on notifications (created_at) where dispatched_at is null;

      create table notification_settings (
        user_id uuid primary key references users(id) on delete cascade,
        channels jsonb not null default '{}',
        quiet_hours jsonb,
        updated_at timestamptz not null default now()
      );
      create index notifications_user_idx on notifications (user_id, created_at desc, id desc);
      create index notifications_user_unread_idx on notifications (user_id) where read_at is null;

      create table webhook_endpoints (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        url varchar(2048) not null,
        secret varchar(100) not null,
        kinds jsonb not null default '[]',
        enabled boolean not null default true,
        description varchar(255),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create index webhook_endpoints_user_idx on webhook_endpoints (user_id, created_at desc, id desc);

      create table push_subscriptions (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        endpoint varchar(2048) not null,
        p256dh varchar(255) not null,
        auth varchar(255) not null,
        user_agent varchar(255),
        created_at timestamptz not null default now()
      );
      create unique index push_subscriptions_endpoint_key on push_subscriptions (endpoint);
      create index push_subscriptions_user_idx on push_subscriptions (user_id, created_at desc, id desc);

      create table fcm_tokens (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        token varchar(4096) not null,
        platform varchar(16),
        created_at timestamptz not null default now()
      );
      create unique index fcm_tokens_token_key on fcm_tokens (token);
      create index fcm_tokens_user_idx on fcm_tokens (user_id, created_at desc, id desc);

      create table notification_deliveries (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        notification_id uuid not null references notifications(id) on delete cascade,
        channel varchar(16) not null check (channel in ('web_push','fcm','webhook')),
        endpoint_id uuid references webhook_endpoints(id) on delete cascade,
        subscription_id uuid references push_subscriptions(id) on delete cascade,
        fcm_token_id uuid references fcm_tokens(id) on delete cascade,
        status varchar(16) not null check (status in ('pending','succeeded','failed','digested')),
        not_before timestamptz,
        digest_id uuid,
        attempts int not null default 0,
        redeliveries int not null default 0,
        last_status_code int,
        last_error text,
        started_at timestamptz,
        finished_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create unique index notification_deliveries_endpoint_key on notification_deliveries (notification_id, endpoint_id) where endpoint_id is not null;
      create unique index notification_deliveries_subscription_key on notification_deliveries (notification_id, subscription_id) where subscription_id is not null;
      create unique index notification_deliveries_fcm_token_key on notification_deliveries (notification_id, fcm_token_id) where fcm_token_id is not null;
      create index notification_deliveries_endpoint_idx on notification_deliveries (endpoint_id, created_at desc, id desc);
      create index notification_deliveries_unstarted_idx on notification_deliveries (created_at) where started_at is null and status = 'pending';
    `);
  }

  override down(): void {
    this.addSql('drop table if exists notification_deliveries;');
    this.addSql('drop table if exists fcm_tokens;');
    this.addSql('drop table if exists push_subscriptions;');
    this.addSql('drop table if exists webhook_endpoints;');
    this.addSql('drop table if exists notification_settings;');
    this.addSql('drop table if exists notifications;');
  }
}
