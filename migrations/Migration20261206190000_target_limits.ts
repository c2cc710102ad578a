import { Migration } from '@mikro-orm/migrations';

/**
 * Per-account limits on notification targets: `account_admit` (migration 20261206000008) also
 * counts webhooks, Web Push subscriptions and FCM tokens, since each one is a delivery workflow
 * per notification. A subscription or token is saved by upsert, so `p_key` names the endpoint or
 * token being saved: one the user already holds takes no new place, even at the limit. That check
 * needs no row lock: while the caller holds the (kind, user) lock only the user's own requests
 * could add a target of theirs, and they wait on it; others can only take targets away.
 */
export class Migration20261206190000_target_limits extends Migration {
  override name = 'Migration20261206190000_target_limits';

  override up(): void {
    this.addSql(`
      drop function account_admit(uuid, text, bigint);

      create function account_admit(p_user uuid, p_what text, p_max bigint, p_key text default null) returns void
      language plpgsql as $$
      declare
        n bigint;
      begin
        perform pg_advisory_xact_lock(hashtext('account:' || p_what), hashtext(p_user::text));
        if p_key is not null then
          case p_what
            when 'push_subscriptions' then perform 1 from push_subscriptions where endpoint = p_key and user_id = p_user;
            when 'fcm_tokens' then perform 1 from fcm_tokens where token = p_key and user_id = p_user;
            else raise exception 'account_admit: % has no key', p_what;
          end case;
          if found then
            return;
          end if;
        end if;
        n := case p_what
          when 'runs' then (select count(*) from tasks where user_id = p_user and status in ('pending', 'running', 'paused'))
          when 'devices' then (select count(*) from devices where user_id = p_user)
          when 'workflows' then (select count(*) from workflows where user_id = p_user)
          when 'schedules' then (select count(*) from schedules where user_id = p_user)
          when 'webhooks' then (select count(*) from webhook_endpoints where user_id = p_user)
          when 'push_subscriptions' then (select count(*) from push_subscriptions where user_id = p_user)
          when 'fcm_tokens' then (select count(*) from fcm_tokens where user_id = p_user)
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
    this.addSql(`
      drop function if exists account_admit(uuid, text, bigint, text);

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
}
