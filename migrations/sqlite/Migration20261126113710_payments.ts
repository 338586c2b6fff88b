import { Migration } from '@mikro-orm/migrations';

export class Migration20261126113710_payments extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table \`payments\` (\`id\` text not null, \`merchant_id\` text not null default 'default', \`created_at\` datetime not null, \`updated_at\` datetime not null, \`order_id\` text not null, \`payment_no\` text not null, \`channel\` text not null, \`status\` text not null default 'PENDING', \`amount\` integer not null, \`currency\` text not null, \`provider_transaction_id\` text null, \`provider_reference\` text null, \`session\` json null, \`expires_at\` datetime null, \`paid_at\` datetime null, \`closed_at\` datetime null, \`failure_reason\` text null, \`provider_data\` json null, \`next_query_at\` datetime null, \`attempts\` integer not null default 0, \`version\` integer not null default 1, primary key (\`id\`));`);
    this.addSql(`create index \`payments_merchant_id_index\` on \`payments\` (\`merchant_id\`);`);
    this.addSql(`create unique index \`payments_payment_no_unique\` on \`payments\` (\`payment_no\`);`);
    this.addSql(`create index \`payments_status_next_query_at_index\` on \`payments\` (\`status\`, \`next_query_at\`);`);
    this.addSql(`create index \`payments_order_id_status_index\` on \`payments\` (\`order_id\`, \`status\`);`);

    this.addSql(`create table \`payment_notifications\` (\`id\` text not null, \`provider\` text not null, \`notification_id\` text null, \`payment_no\` text null, \`received_at\` datetime not null, \`outcome\` text not null, \`flagged\` integer not null default false, \`reason\` text null, \`applied_key\` text null, \`raw_body\` text not null, \`payload\` json null, primary key (\`id\`));`);
    this.addSql(`create index \`payment_notifications_payment_no_index\` on \`payment_notifications\` (\`payment_no\`);`);
    this.addSql(`create unique index \`payment_notifications_applied_key_unique\` on \`payment_notifications\` (\`applied_key\`);`);
    this.addSql(`create index \`payment_notifications_flagged_id_index\` on \`payment_notifications\` (\`flagged\`, \`id\`);`);

    this.addSql(`create table \`refunds\` (\`id\` text not null, \`merchant_id\` text not null default 'default', \`created_at\` datetime not null, \`updated_at\` datetime not null, \`order_id\` text not null, \`payment_id\` text not null, \`refund_no\` text not null, \`amount\` integer not null, \`status\` text not null default 'PENDING', \`reason\` text null, \`requested_by\` text not null, \`idempotency_key\` text null, \`provider_refund_id\` text null, \`completed_at\` datetime null, \`provider_data\` json null, \`next_query_at\` datetime null, \`attempts\` integer not null default 0, \`version\` integer not null default 1, primary key (\`id\`));`);
    this.addSql(`create index \`refunds_merchant_id_index\` on \`refunds\` (\`merchant_id\`);`);
    this.addSql(`create index \`refunds_order_id_index\` on \`refunds\` (\`order_id\`);`);
    this.addSql(`create index \`refunds_payment_id_index\` on \`refunds\` (\`payment_id\`);`);
    this.addSql(`create unique index \`refunds_refund_no_unique\` on \`refunds\` (\`refund_no\`);`);
    this.addSql(`create index \`refunds_status_next_query_at_index\` on \`refunds\` (\`status\`, \`next_query_at\`);`);
    this.addSql(`create unique index \`refunds_order_id_idempotency_key_unique\` on \`refunds\` (\`order_id\`, \`idempotency_key\`);`);

    this.addSql(`alter table \`orders\` add column \`paid_payment_id\` text null;`);
  }

}
