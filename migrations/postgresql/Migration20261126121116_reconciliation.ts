import { Migration } from '@mikro-orm/migrations';

export class Migration20261126121116_reconciliation extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "reconciliation_discrepancies" ("id" uuid not null, "merchant_id" varchar(64) not null default 'default', "created_at" timestamptz not null, "updated_at" timestamptz not null, "report_id" uuid not null, "provider" varchar(16) not null, "date" varchar(10) not null, "subject" varchar(100) not null, "kind" varchar(24) not null, "payment_no" varchar(64) null, "refund_no" varchar(64) null, "provider_transaction_id" varchar(64) null, "local_amount" int null, "provider_amount" int null, "local_status" varchar(16) null, "provider_status" varchar(40) null, "state" varchar(12) not null default 'open', "note" varchar(500) null, "resolved_by" varchar(100) null, "resolved_at" timestamptz null, "version" int not null default 1, constraint "reconciliation_discrepancies_pkey" primary key ("id"));`);
    this.addSql(`create index "reconciliation_discrepancies_merchant_id_index" on "reconciliation_discrepancies" ("merchant_id");`);
    this.addSql(`create index "reconciliation_discrepancies_state_id_index" on "reconciliation_discrepancies" ("state", "id");`);
    this.addSql(`create index "reconciliation_discrepancies_provider_date_id_index" on "reconciliation_discrepancies" ("provider", "date", "id");`);
    this.addSql(`alter table "reconciliation_discrepancies" add constraint "reconciliation_discrepancies_report_id_subject_unique" unique ("report_id", "subject");`);

    this.addSql(`create table "reconciliation_reports" ("id" uuid not null, "merchant_id" varchar(64) not null default 'default', "created_at" timestamptz not null, "updated_at" timestamptz not null, "provider" varchar(16) not null, "date" varchar(10) not null, "matched_count" int not null default 0, "provider_row_count" int not null default 0, "provider_payment_count" int not null default 0, "provider_payment_amount" int not null default 0, "provider_refund_count" int not null default 0, "provider_refund_amount" int not null default 0, "provider_total_amount" int not null default 0, "local_payment_count" int not null default 0, "local_payment_amount" int not null default 0, "local_refund_count" int not null default 0, "local_refund_amount" int not null default 0, "local_total_amount" int not null default 0, "totals_match" boolean not null default false, "runs" int not null default 0, "last_run_at" timestamptz null, "last_run_by" varchar(100) null, "lease_until" timestamptz null, constraint "reconciliation_reports_pkey" primary key ("id"));`);
    this.addSql(`create index "reconciliation_reports_merchant_id_index" on "reconciliation_reports" ("merchant_id");`);
    this.addSql(`alter table "reconciliation_reports" add constraint "reconciliation_reports_merchant_id_provider_date_unique" unique ("merchant_id", "provider", "date");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "reconciliation_discrepancies" cascade;`);

    this.addSql(`drop table if exists "reconciliation_reports" cascade;`);
  }

}
