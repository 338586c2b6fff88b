import { Migration } from '@mikro-orm/migrations';

export class Migration20261126112831_initial extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`coupons\` (\`id\` text not null, \`merchant_id\` text not null default 'default', \`created_at\` datetime not null, \`updated_at\` datetime not null, \`code\` text not null, \`kind\` text not null, \`value\` integer not null, \`min_spend_amount\` integer not null default 0, \`starts_at\` datetime null, \`ends_at\` datetime null, \`usage_limit\` integer null, \`used_count\` integer not null default 0, primary key (\`id\`));`);
    this.addSql(`create index \`coupons_merchant_id_index\` on \`coupons\` (\`merchant_id\`);`);
    this.addSql(`create unique index \`coupons_merchant_id_code_unique\` on \`coupons\` (\`merchant_id\`, \`code\`);`);

    this.addSql(`create table \`orders\` (\`id\` text not null, \`merchant_id\` text not null default 'default', \`created_at\` datetime not null, \`updated_at\` datetime not null, \`order_no\` text not null, \`status\` text not null default 'PENDING_PAYMENT', \`customer_id\` text not null, \`items\` json not null, \`currency\` text not null, \`subtotal_amount\` integer not null, \`discount_amount\` integer not null default 0, \`shipping_amount\` integer not null, \`total_amount\` integer not null, \`paid_amount\` integer not null default 0, \`refunded_amount\` integer not null default 0, \`coupon_code\` text null, \`coupon_id\` text null, \`shipping_address\` json null, \`shipment\` json null, \`note\` text null, \`review\` json null, \`expires_at\` datetime null, \`paid_at\` datetime null, \`idempotency_key\` text null, \`request_hash\` text null, \`version\` integer not null default 1, primary key (\`id\`));`);
    this.addSql(`create index \`orders_merchant_id_index\` on \`orders\` (\`merchant_id\`);`);
    this.addSql(`create unique index \`orders_order_no_unique\` on \`orders\` (\`order_no\`);`);
    this.addSql(`create index \`orders_status_expires_at_index\` on \`orders\` (\`status\`, \`expires_at\`);`);
    this.addSql(`create index \`orders_customer_id_id_index\` on \`orders\` (\`customer_id\`, \`id\`);`);
    this.addSql(`create unique index \`orders_customer_id_idempotency_key_unique\` on \`orders\` (\`customer_id\`, \`idempotency_key\`);`);

    this.addSql(`create table \`order_events\` (\`id\` text not null, \`order_id\` text not null, \`from_status\` text null, \`to_status\` text not null, \`actor\` text not null, \`reason\` text null, \`at\` datetime not null, constraint \`order_events_order_id_foreign\` foreign key(\`order_id\`) references \`orders\`(\`id\`) on delete cascade on update cascade, primary key (\`id\`));`);
    this.addSql(`create index \`order_events_order_id_index\` on \`order_events\` (\`order_id\`);`);
    this.addSql(`create index \`order_events_order_id_at_index\` on \`order_events\` (\`order_id\`, \`at\`);`);

    this.addSql(`create table \`outbox\` (\`id\` text not null, \`topic\` text not null, \`payload\` json not null, \`created_at\` datetime not null, primary key (\`id\`));`);
    this.addSql(`create index \`outbox_created_at_index\` on \`outbox\` (\`created_at\`);`);

    this.addSql(`create table \`products\` (\`id\` text not null, \`merchant_id\` text not null default 'default', \`created_at\` datetime not null, \`updated_at\` datetime not null, \`sku\` text not null, \`name\` text not null, \`price_amount\` integer not null, \`currency\` text not null default 'CNY', \`stock\` integer not null, \`active\` integer not null default true, primary key (\`id\`));`);
    this.addSql(`create index \`products_merchant_id_index\` on \`products\` (\`merchant_id\`);`);
    this.addSql(`create unique index \`products_merchant_id_sku_unique\` on \`products\` (\`merchant_id\`, \`sku\`);`);
  }

}
