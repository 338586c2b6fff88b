import { Migration } from '@mikro-orm/migrations';

export class Migration20261127180103_lean_indexes extends Migration {

  override async up(): Promise<void> {
    this.addSql(`drop index "coupons_merchant_id_index";`);

    this.addSql(`drop index "orders_merchant_id_index";`);

    this.addSql(`drop index "payments_merchant_id_index";`);

    this.addSql(`drop index "products_merchant_id_index";`);

    this.addSql(`drop index "reconciliation_reports_merchant_id_index";`);

    this.addSql(`drop index "refunds_order_id_index";`);
  }

  override async down(): Promise<void> {
    this.addSql(`create index "coupons_merchant_id_index" on "coupons" ("merchant_id");`);

    this.addSql(`create index "orders_merchant_id_index" on "orders" ("merchant_id");`);

    this.addSql(`create index "payments_merchant_id_index" on "payments" ("merchant_id");`);

    this.addSql(`create index "products_merchant_id_index" on "products" ("merchant_id");`);

    this.addSql(`create index "reconciliation_reports_merchant_id_index" on "reconciliation_reports" ("merchant_id");`);

    this.addSql(`create index "refunds_order_id_index" on "refunds" ("order_id");`);
  }

}
