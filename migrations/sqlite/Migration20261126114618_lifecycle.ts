import { Migration } from '@mikro-orm/migrations';

export class Migration20261126114618_lifecycle extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table \`orders\` add column \`sweep_lease_until\` datetime null;`);
  }

}
