import { Migration } from '@mikro-orm/migrations';

/**
 * Per-account permits for delivery attempts: a delivery's request holds its account's permit
 * until `attempting_until` (its request's timeout and a margin), so one account's receivers that
 * hang can hold at most DELIVERY_MAX_IN_FLIGHT_PER_ACCOUNT of the deliveries worker's slots
 * (src/db/deliveries.ts, takePermit). A worker lost mid-request leaves a permit that simply
 * expires. The index keeps the count of an account's attempts in flight to the few rows that have one.
 */
export class Migration20261206180000_delivery_permits extends Migration {
  override name = 'Migration20261206180000_delivery_permits';

  override up(): void {
    this.addSql(`
      alter table notification_deliveries add column attempting_until timestamptz;
      create index notification_deliveries_attempting_idx on notification_deliveries (user_id, attempting_until) where attempting_until is not null;
    `);
  }

  override down(): void {
    this.addSql('drop index if exists notification_deliveries_attempting_idx;');
    this.addSql('alter table notification_deliveries drop column if exists attempting_until;');
  }
}
