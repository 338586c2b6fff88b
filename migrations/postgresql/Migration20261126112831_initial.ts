import { Migration } from '@mikro-orm/migrations';

export class Migration20261126112831_initial extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "coupons" ("id" uuid not null, "merchant_id" varchar(64) not null default 'default', "created_at" timestamptz not null, "updated_at" timestamptz not null, "code" varchar(64) not null, "kind" varchar(16) not null, "value" int not null, "min_spend_amount" int not null default 0, "starts_at" timestamptz null, "ends_at" timestamptz null, "usage_limit" int null, "used_count" int not null default 0, constraint "coupons_pkey" primary key ("id"));`);
    this.addSql(`create index "coupons_merchant_id_index" on "coupons" ("merchant_id");`);
    this.addSql(`alter table "coupons" add constraint "coupons_merchant_id_code_unique" unique ("merchant_id", "code");`);

    this.addSql(`create table "orders" ("id" uuid not null, "merchant_id" varchar(64) not null default 'default', "created_at" timestamptz not null, "updated_at" timestamptz not null, "order_no" varchar(32) not null, "status" varchar(20) not null default 'PENDING_PAYMENT', "customer_id" varchar(128) not null, "items" jsonb not null, "currency" varchar(3) not null, "subtotal_amount" int not null, "discount_amount" int not null default 0, "shipping_amount" int not null, "total_amount" int not null, "paid_amount" int not null default 0, "refunded_amount" int not null default 0, "coupon_code" varchar(64) null, "coupon_id" uuid null, "shipping_address" jsonb null, "shipment" jsonb null, "note" varchar(500) null, "review" jsonb null, "expires_at" timestamptz null, "paid_at" timestamptz null, "idempotency_key" varchar(128) null, "request_hash" varchar(64) null, "version" int not null default 1, constraint "orders_pkey" primary key ("id"));`);
    this.addSql(`create index "orders_merchant_id_index" on "orders" ("merchant_id");`);
    this.addSql(`alter table "orders" add constraint "orders_order_no_unique" unique ("order_no");`);
    this.addSql(`create index "orders_status_expires_at_index" on "orders" ("status", "expires_at");`);
    this.addSql(`create index "orders_customer_id_id_index" on "orders" ("customer_id", "id");`);
    this.addSql(`alter table "orders" add constraint "orders_customer_id_idempotency_key_unique" unique ("customer_id", "idempotency_key");`);

    this.addSql(`create table "order_events" ("id" uuid not null, "order_id" uuid not null, "from_status" varchar(20) null, "to_status" varchar(20) not null, "actor" varchar(100) not null, "reason" varchar(500) null, "at" timestamptz not null, constraint "order_events_pkey" primary key ("id"));`);
    this.addSql(`create index "order_events_order_id_at_index" on "order_events" ("order_id", "at");`);

    this.addSql(`create table "outbox" ("id" uuid not null, "topic" varchar(200) not null, "payload" jsonb not null, "created_at" timestamptz not null, constraint "outbox_pkey" primary key ("id"));`);
    this.addSql(`create index "outbox_created_at_index" on "outbox" ("created_at");`);

    this.addSql(`create table "products" ("id" uuid not null, "merchant_id" varchar(64) not null default 'default', "created_at" timestamptz not null, "updated_at" timestamptz not null, "sku" varchar(64) not null, "name" varchar(200) not null, "price_amount" int not null, "currency" varchar(3) not null default 'CNY', "stock" int not null, "active" boolean not null default true, constraint "products_pkey" primary key ("id"));`);
    this.addSql(`create index "products_merchant_id_index" on "products" ("merchant_id");`);
    this.addSql(`alter table "products" add constraint "products_merchant_id_sku_unique" unique ("merchant_id", "sku");`);

    this.addSql(`alter table "order_events" add constraint "order_events_order_id_foreign" foreign key ("order_id") references "orders" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "order_events" drop constraint "order_events_order_id_foreign";`);

    this.addSql(`drop table if exists "coupons" cascade;`);

    this.addSql(`drop table if exists "orders" cascade;`);

    this.addSql(`drop table if exists "order_events" cascade;`);

    this.addSql(`drop table if exists "outbox" cascade;`);

    this.addSql(`drop table if exists "products" cascade;`);
  }

}
