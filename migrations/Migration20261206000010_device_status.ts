import { Migration } from '@mikro-orm/migrations';

/**
 * What a device last said about itself in `device/status`: whether it is busy (belongs to its
 * current connection: reset when it connects or goes offline) and its machine readings
 * (`{cpu_percent?, memory_percent?, battery?: {percent, charging?}}`, merged field by field),
 * with when they came, so GET /users/devices shows them on every API node.
 */
export class Migration20261206000010_device_status extends Migration {
  override name = 'Migration20261206000010_device_status';

  override up(): void {
    this.addSql('alter table devices add column is_busy boolean not null default false, add column status jsonb, add column status_at timestamptz;');
  }

  override down(): void {
    this.addSql('alter table devices drop column is_busy, drop column status, drop column status_at;');
  }
}
