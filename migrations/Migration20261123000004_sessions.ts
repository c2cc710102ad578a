import { Migration } from '@mikro-orm/migrations';

/**
 * Login sessions and their refresh tokens. A session is one refresh-token family: each use
 * of a refresh token spends it and issues the next; reusing a spent one revokes the session,
 * and with it every access token that carries its id.
 */
export class Migration20261123000004_sessions extends Migration {
  override name = 'Migration20261123000004_sessions';

  override up(): void {
    this.addSql(`
      create table sessions (
        id uuid primary key,
        user_id uuid not null references users(id) on delete cascade,
        client varchar(100),
        created_at timestamptz not null default now(),
        revoked_at timestamptz,
        revoked_reason varchar(100)
      );
      create index sessions_user_idx on sessions (user_id);

      create table refresh_tokens (
        id uuid primary key,
        session_id uuid not null references sessions(id) on delete cascade,
        token_hash varchar(64) not null unique,
        expires_at timestamptz not null,
        used_at timestamptz,
        created_at timestamptz not null default now()
      );
      create index refresh_tokens_session_idx on refresh_tokens (session_id);
    `);
  }

  override down(): void {
    this.addSql('drop table if exists refresh_tokens, sessions;');
  }
}
