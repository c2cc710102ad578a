import { Migration } from '@mikro-orm/migrations';

/**
 * The running step's last progress as the device reported it (`{step_id, key, attempt, percent?,
 * message?, at}`), written by the API node holding the device at most every few seconds, so
 * GET /tasks/:id shows it to a client that was not watching the live stream.
 */
export class Migration20261206000009_step_progress extends Migration {
  override name = 'Migration20261206000009_step_progress';

  override up(): void {
    this.addSql('alter table tasks add column step_progress jsonb;');
  }

  override down(): void {
    this.addSql('alter table tasks drop column step_progress;');
  }
}
