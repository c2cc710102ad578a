import { Migration } from '@mikro-orm/migrations';

/**
 * Uploaded files' bytes move into PostgreSQL (src/db/file-chunks.ts), so every API node
 * serves every file. The foreign key is checked at commit: an upload writes the chunks before
 * the row in one transaction. Deleting a file (or its user) deletes its chunks.
 */
export class Migration20261206000007_file_chunks extends Migration {
  override name = 'Migration20261206000007_file_chunks';

  override up(): void {
    this.addSql(`
      create table file_chunks (
        storage_key varchar(255) not null
          references files(storage_key) on delete cascade deferrable initially deferred,
        seq int not null check (seq >= 0),
        data bytea not null,
        primary key (storage_key, seq)
      );
      -- Most allowed types (png, jpeg, zip, pdf) are compressed already: do not try again.
      alter table file_chunks alter column data set storage external;
    `);
  }

  override down(): void {
    this.addSql('drop table if exists file_chunks;');
  }
}
