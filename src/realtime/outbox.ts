import { Entity, PrimaryKey, Property } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/knex';
import type { Orm } from '../shared/db/orm';
import type { Logger } from 'pino';
import { newId } from '../shared/db/entity';
import { Sql } from '../shared/db/sql';
import type { PubSub } from './pubsub';

/** An event written in the same transaction as the change it announces; published after commit, then deleted. */
@Entity({ tableName: 'outbox' })
export class OutboxMessage {
  @PrimaryKey({ type: 'uuid' })
  id: string = newId();

  @Property({ length: 200 })
  topic!: string;

  @Property({ type: 'json' })
  payload!: unknown;

  @Property({ type: 'datetime', index: true })
  createdAt: Date = new Date();
}

export type Emit = (topic: string, payload: unknown) => void;

/** The head of every INSERT of outbox rows, followed by `values …` or by a `select` of the same four columns. */
export const OUTBOX_INSERT = 'insert into outbox (id, topic, payload, created_at)';

export type OutboxRow = Pick<OutboxMessage, 'id' | 'topic' | 'payload' | 'createdAt'>;

/**
 * The transactional outbox, the one way events leave the service.
 *
 * `transaction` runs the work in a database transaction, handing it `emit`; emitted events are rows of the same
 * transaction, so they exist if and only if the change committed. After commit they are published at once and
 * deleted in batches. A crash between commit and publish leaves rows behind; `sweep` (run periodically by every instance)
 * publishes rows older than a few seconds. Delivery is therefore at least once: payloads are full state snapshots, so a
 * repeated event is harmless to a checkout screen.
 */
export class Outbox {
  private published: string[] = [];
  private deleteTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly orm: Orm,
    private readonly pubsub: PubSub,
    private readonly log: Logger,
  ) {}

  /** ORM work (entities through the unit of work) in one transaction, with the events it emits. */
  async transaction<T>(em: EntityManager, work: (tx: EntityManager, emit: Emit) => Promise<T>): Promise<T> {
    return this.withEvents((emit, write) =>
      em.transactional(async (tx) => {
        const out = await work(tx, emit);
        await write(Sql.on(tx));
        return out;
      }),
    );
  }

  /** Hand-written statements in one transaction (Sql.transaction, the hot paths), with the events they emit. */
  async sqlTransaction<T>(work: (sql: Sql, emit: Emit) => Promise<T>): Promise<T> {
    return this.withEvents((emit, write) =>
      Sql.transaction(this.orm.em, async (sql) => {
        const out = await work(sql, emit);
        await write(sql);
        return out;
      }),
    );
  }

  /** Collects the events a transaction emits, writes them as its last statement, and publishes them after commit. */
  private async withEvents<T>(run: (emit: Emit, write: (sql: Sql) => Promise<void>) => Promise<T>): Promise<T> {
    const messages: OutboxRow[] = [];
    const emit: Emit = (topic, payload) => void messages.push({ id: newId(), topic, payload, createdAt: new Date() });
    // One INSERT for the transaction's events, written by hand (not through the unit of work: see shared/db/sql.ts).
    const write = async (sql: Sql) => {
      if (!messages.length) return;
      await sql.later(
        `${OUTBOX_INSERT} values ${messages.map(() => '(?, ?, ?, ?)').join(', ')}`,
        messages.flatMap((m) => [m.id, m.topic, JSON.stringify(m.payload), m.createdAt]),
      );
    };
    const result = await run(emit, write);
    if (messages.length) await this.deliver(messages);
    return result;
  }

  /**
   * Events whose outbox rows a single statement wrote itself (`OUTBOX_INSERT`, with these ids and payloads; the
   * payment callback's one-statement path): published now that the statement has committed, as `transaction` does.
   */
  async written(messages: readonly OutboxRow[]): Promise<void> {
    await this.deliver(messages);
  }

  /** Publishes messages left behind by a crash (older than `olderThanMs`). */
  async sweep(olderThanMs = 5000): Promise<number> {
    const em = this.orm.em.fork();
    const stale = await em.find(
      OutboxMessage,
      { createdAt: { $lt: new Date(Date.now() - olderThanMs) } },
      { orderBy: { createdAt: 'asc' }, limit: 200 },
    );
    if (stale.length) await this.deliver(stale);
    return stale.length;
  }

  private async deliver(messages: readonly OutboxRow[]): Promise<void> {
    const published: string[] = [];
    for (const m of messages) {
      try {
        await this.pubsub.publish(m.topic, m.payload);
        published.push(m.id);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, topic: m.topic }, 'publish failed; the outbox sweep will retry');
      }
    }
    if (!published.length) return;
    this.published.push(...published);
    if (!this.deleteTimer) {
      this.deleteTimer = setTimeout(() => void this.flushDeletes(), DELETE_BATCH_MS);
      this.deleteTimer.unref();
    }
  }

  /** Deletes published rows in one statement per batch (not one per event); `close` flushes what is left. */
  async flushDeletes(): Promise<void> {
    if (this.deleteTimer) clearTimeout(this.deleteTimer);
    this.deleteTimer = null;
    const ids = this.published.splice(0);
    if (!ids.length) return;
    try {
      await this.orm.em.fork().nativeDelete(OutboxMessage, { id: { $in: ids } });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not delete published outbox rows; they may be published again');
    }
  }
}

/** Published rows are deleted in batches this often; the sweep only republishes rows older than its threshold (5 s). */
const DELETE_BATCH_MS = 200;
