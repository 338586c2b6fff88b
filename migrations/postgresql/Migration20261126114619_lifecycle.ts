import { Migration } from '@mikro-orm/migrations';

export class Migration20261126114619_lifecycle extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "orders" add column "sweep_lease_until" timestamptz null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "orders" drop column "sweep_lease_until";`);
  }

}
