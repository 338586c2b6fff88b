import { Migration } from '@mikro-orm/migrations';

export class Migration20261126113710_payments extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "payments" ("id" uuid not null, "merchant_id" varchar(64) not null default 'default', "created_at" timestamptz not null, "updated_at" timestamptz not null, "order_id" uuid not null, "payment_no" varchar(32) not null, "channel" varchar(20) not null, "status" varchar(12) not null default 'PENDING', "amount" int not null, "currency" varchar(3) not null, "provider_transaction_id" varchar(64) null, "provider_reference" varchar(128) null, "session" jsonb null, "expires_at" timestamptz null, "paid_at" timestamptz null, "closed_at" timestamptz null, "failure_reason" varchar(200) null, "provider_data" jsonb null, "next_query_at" timestamptz null, "attempts" int not null default 0, "version" int not null default 1, constraint "payments_pkey" primary key ("id"));`);
    this.addSql(`create index "payments_merchant_id_index" on "payments" ("merchant_id");`);
    this.addSql(`alter table "payments" add constraint "payments_payment_no_unique" unique ("payment_no");`);
    this.addSql(`create index "payments_status_next_query_at_index" on "payments" ("status", "next_query_at");`);
    this.addSql(`create index "payments_order_id_status_index" on "payments" ("order_id", "status");`);

    this.addSql(`create table "payment_notifications" ("id" uuid not null, "provider" varchar(16) not null, "notification_id" varchar(128) null, "payment_no" varchar(64) null, "received_at" timestamptz not null, "outcome" varchar(12) not null, "flagged" boolean not null default false, "reason" varchar(300) null, "applied_key" varchar(160) null, "raw_body" text not null, "payload" jsonb null, constraint "payment_notifications_pkey" primary key ("id"));`);
    this.addSql(`create index "payment_notifications_payment_no_index" on "payment_notifications" ("payment_no");`);
    this.addSql(`alter table "payment_notifications" add constraint "payment_notifications_applied_key_unique" unique ("applied_key");`);
    this.addSql(`create index "payment_notifications_flagged_id_index" on "payment_notifications" ("flagged", "id");`);

    this.addSql(`create table "refunds" ("id" uuid not null, "merchant_id" varchar(64) not null default 'default', "created_at" timestamptz not null, "updated_at" timestamptz not null, "order_id" uuid not null, "payment_id" uuid not null, "refund_no" varchar(64) not null, "amount" int not null, "status" varchar(12) not null default 'PENDING', "reason" varchar(200) null, "requested_by" varchar(100) not null, "idempotency_key" varchar(128) null, "provider_refund_id" varchar(64) null, "completed_at" timestamptz null, "provider_data" jsonb null, "next_query_at" timestamptz null, "attempts" int not null default 0, "version" int not null default 1, constraint "refunds_pkey" primary key ("id"));`);
    this.addSql(`create index "refunds_merchant_id_index" on "refunds" ("merchant_id");`);
    this.addSql(`create index "refunds_order_id_index" on "refunds" ("order_id");`);
    this.addSql(`create index "refunds_payment_id_index" on "refunds" ("payment_id");`);
    this.addSql(`alter table "refunds" add constraint "refunds_refund_no_unique" unique ("refund_no");`);
    this.addSql(`create index "refunds_status_next_query_at_index" on "refunds" ("status", "next_query_at");`);
    this.addSql(`alter table "refunds" add constraint "refunds_order_id_idempotency_key_unique" unique ("order_id", "idempotency_key");`);

    this.addSql(`alter table "orders" add column "paid_payment_id" uuid null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "payments" cascade;`);

    this.addSql(`drop table if exists "payment_notifications" cascade;`);

    this.addSql(`drop table if exists "refunds" cascade;`);

    this.addSql(`alter table "orders" drop column "paid_payment_id";`);
  }

}
