import { Migration } from '@mikro-orm/migrations';

export class Migration20261127180102_lean_indexes extends Migration {

  override async up(): Promise<void> {
    this.addSql(`drop index \`coupons_merchant_id_index\`;`);

    this.addSql(`drop index \`orders_merchant_id_index\`;`);

    this.addSql(`drop index \`order_events_order_id_index\`;`);

    this.addSql(`drop index \`payments_merchant_id_index\`;`);

    this.addSql(`drop index \`products_merchant_id_index\`;`);

    this.addSql(`drop index \`reconciliation_reports_merchant_id_index\`;`);

    this.addSql(`drop index \`refunds_order_id_index\`;`);
  }

}
