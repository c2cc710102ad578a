import { Migration } from '@mikro-orm/migrations';

/**
 * Per-account limits (src/db/quotas.ts): `account_admit` takes the user's place for one more
 * run, device, workflow or schedule inside the caller's transaction, or raises SQLSTATE JL001.
 * The transaction-scoped advisory lock per (kind, user) makes the count and the insert after it
 * one step for that user, so concurrent requests cannot pass the limit together; other users
 * never wait on it. The partial index keeps counting a user's unfinished runs proportional to
 * those runs, not to the user's whole history.
 */
export class Migration20261206000008_account_limits extends Migration {
  override name = 'Migration20261206000008_account_limits';

  override up(): void {
    this.addSql(`
      create index tasks_user_unfinished_idx on tasks (user_id) where status in ('pending', 'running', 'paused');

      create function account_admit(p_user uuid, p_what text, p_max bigint) returns void
      language plpgsql as $$
      declare
        n bigint;
      begin
        perform pg_advisory_xact_lock(hashtext('account:' || p_what), hashtext(p_user::text));
        n := case p_what
          when 'runs' then (select count(*) from tasks where user_id = p_user and status in ('pending', 'running', 'paused'))
          when 'devices' then (select count(*) from devices where user_id = p_user)
          when 'workflows' then (select count(*) from workflows where user_id = p_user)
          when 'schedules' then (select count(*) from schedules where user_id = p_user)
        end;
        if n is null then
          raise exception 'account_admit: unknown kind %', p_what;
        end if;
        if n >= p_max then
          raise exception 'account limit of % % reached', p_max, p_what using errcode = 'JL001', detail = p_what;
        end if;
      end $$;
    `);
  }

  override down(): void {
    this.addSql('drop function if exists account_admit(uuid, text, bigint); drop index if exists tasks_user_unfinished_idx;');
  }
}
