import { Migration } from '@mikro-orm/migrations';

/**
 * When the device's current session started: presence writes from an older session that land
 * late (another node, a slow query) must not overwrite a newer one.
 */
export class Migration20261123000005_device_presence extends Migration {
  override name = 'Migration20261123000005_device_presence';

  override up(): void {
    this.addSql('alter table devices add column session_started_at timestamptz;');
  }

  override down(): void {
    this.addSql('alter table devices drop column session_started_at;');
  }
}
