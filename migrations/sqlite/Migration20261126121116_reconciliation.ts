import { Migration } from '@mikro-orm/migrations';

export class Migration20261126121116_reconciliation extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`reconciliation_discrepancies\` (\`id\` text not null, \`merchant_id\` text not null default 'default', \`created_at\` datetime not null, \`updated_at\` datetime not null, \`report_id\` text not null, \`provider\` text not null, \`date\` text not null, \`subject\` text not null, \`kind\` text not null, \`payment_no\` text null, \`refund_no\` text null, \`provider_transaction_id\` text null, \`local_amount\` integer null, \`provider_amount\` integer null, \`local_status\` text null, \`provider_status\` text null, \`state\` text not null default 'open', \`note\` text null, \`resolved_by\` text null, \`resolved_at\` datetime null, \`version\` integer not null default 1, primary key (\`id\`));`);
    this.addSql(`create index \`reconciliation_discrepancies_merchant_id_index\` on \`reconciliation_discrepancies\` (\`merchant_id\`);`);
    this.addSql(`create index \`reconciliation_discrepancies_state_id_index\` on \`reconciliation_discrepancies\` (\`state\`, \`id\`);`);
    this.addSql(`create index \`reconciliation_discrepancies_provider_date_id_index\` on \`reconciliation_discrepancies\` (\`provider\`, \`date\`, \`id\`);`);
    this.addSql(`create unique index \`reconciliation_discrepancies_report_id_subject_unique\` on \`reconciliation_discrepancies\` (\`report_id\`, \`subject\`);`);

    this.addSql(`create table \`reconciliation_reports\` (\`id\` text not null, \`merchant_id\` text not null default 'default', \`created_at\` datetime not null, \`updated_at\` datetime not null, \`provider\` text not null, \`date\` text not null, \`matched_count\` integer not null default 0, \`provider_row_count\` integer not null default 0, \`provider_payment_count\` integer not null default 0, \`provider_payment_amount\` integer not null default 0, \`provider_refund_count\` integer not null default 0, \`provider_refund_amount\` integer not null default 0, \`provider_total_amount\` integer not null default 0, \`local_payment_count\` integer not null default 0, \`local_payment_amount\` integer not null default 0, \`local_refund_count\` integer not null default 0, \`local_refund_amount\` integer not null default 0, \`local_total_amount\` integer not null default 0, \`totals_match\` integer not null default false, \`runs\` integer not null default 0, \`last_run_at\` datetime null, \`last_run_by\` text null, \`lease_until\` datetime null, primary key (\`id\`));`);
    this.addSql(`create index \`reconciliation_reports_merchant_id_index\` on \`reconciliation_reports\` (\`merchant_id\`);`);
    this.addSql(`create unique index \`reconciliation_reports_merchant_id_provider_date_unique\` on \`reconciliation_reports\` (\`merchant_id\`, \`provider\`, \`date\`);`);
  }

}
