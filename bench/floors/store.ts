import { Pool, type PoolClient } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { openSqlite, type SqliteDatabase, type SqliteStatement } from '../lib/db';

/**
 * The floors' SQL with the plain drivers (pg Pool of 20 like the service's MikroORM pool; better-sqlite3 with WAL,
 * busy_timeout and synchronous = FULL: every COMMIT synced before it is answered, as in the service). Same tables,
 * same rows, same statements as the service's createOrder transaction;
 * the callback's exactly-once step is one conditional update.
 */

export interface OrderLine {
  sku: string;
  quantity: number;
}

export interface CreatedOrder {
  id: string;
  orderNo: string;
  status: string;
  totalAmount: number;
}

export interface PaidOrder {
  orderId: string;
  orderNo: string;
  paymentId: string;
  paymentNo: string;
  channel: string;
  totalAmount: number;
  paidAmount: number;
  refundedAmount: number;
  version: number;
}

export class OutOfStock extends Error {}
export class BadInput extends Error {}

export interface FloorStore {
  createOrder(customerId: string, lines: OrderLine[], idempotencyKey: string | null, requestHash: string): Promise<CreatedOrder>;
  /** Conditional update PENDING → SUCCEEDED and the order PAYING → PAID; null when it was applied before (or unknown). */
  applyPayment(paymentNo: string, amount: number, transactionId: string, paidAt: Date): Promise<PaidOrder | null>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const SHIPPING_FEE = 1000;
const FREE_SHIPPING_FROM = 9900;
const TIMEOUT_MS = 86_400_000;

function newOrderNo(now: Date): string {
  const china = new Date(now.getTime() + 8 * 3600_000).toISOString().slice(0, 19).replace(/[-T:]/g, '');
  return china + String(Math.floor(Math.random() * 100_000_000)).padStart(8, '0');
}

interface PricedLine {
  id: string;
  sku: string;
  name: string;
  price: number;
  quantity: number;
}

function price(lines: PricedLine[]) {
  const items = lines.map((l) => ({ sku: l.sku, name: l.name, unitPriceAmount: l.price, quantity: l.quantity, lineTotalAmount: l.price * l.quantity }));
  const subtotal = items.reduce((s, i) => s + i.lineTotalAmount, 0);
  const shipping = subtotal >= FREE_SHIPPING_FROM ? 0 : SHIPPING_FEE;
  return { items, subtotal, shipping, total: subtotal + shipping };
}

export function openStore(databaseUrl: string): FloorStore {
  return databaseUrl.startsWith('sqlite:') ? new SqliteStore(databaseUrl.slice('sqlite:'.length)) : new PgStore(databaseUrl);
}

class PgStore implements FloorStore {
  private readonly pool: Pool;

  constructor(url: string) {
    this.pool = new Pool({ connectionString: url, max: 20 });
  }

  async ping(): Promise<void> {
    await this.pool.query('select 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async findByKey(customerId: string, key: string): Promise<CreatedOrder | null> {
    const r = await this.pool.query(
      'select id, order_no, status, total_amount from orders where customer_id = $1 and idempotency_key = $2 limit 1',
      [customerId, key],
    );
    const row = r.rows[0];
    return row ? { id: row.id, orderNo: row.order_no, status: row.status, totalAmount: row.total_amount } : null;
  }

  async createOrder(customerId: string, lines: OrderLine[], key: string | null, requestHash: string): Promise<CreatedOrder> {
    if (key) {
      const existing = await this.findByKey(customerId, key);
      if (existing) return existing;
    }
    const c: PoolClient = await this.pool.connect();
    try {
      await c.query('begin');
      const products = await c.query(
        `select id, sku, name, price_amount, active from products where merchant_id = 'default' and sku = any($1)`,
        [lines.map((l) => l.sku)],
      );
      const bySku = new Map(products.rows.map((p) => [p.sku as string, p]));
      const priced: PricedLine[] = lines.map((l) => {
        const p = bySku.get(l.sku);
        if (!p || !p.active) throw new BadInput(`Unknown or unavailable SKU: ${l.sku}`);
        return { id: p.id, sku: p.sku, name: p.name, price: p.price_amount, quantity: l.quantity };
      });
      for (const l of priced) {
        const r = await c.query('update products set stock = stock - $1 where id = $2 and stock >= $1', [l.quantity, l.id]);
        if (!r.rowCount) throw new OutOfStock(`Not enough stock for ${l.sku}`);
      }
      const q = price(priced);
      const now = new Date();
      const id = uuidv7();
      const orderNo = newOrderNo(now);
      await c.query(
        `insert into orders (id, merchant_id, created_at, updated_at, order_no, status, customer_id, items, currency,
           subtotal_amount, discount_amount, shipping_amount, total_amount, paid_amount, refunded_amount, expires_at,
           idempotency_key, request_hash, version)
         values ($1, 'default', $2, $2, $3, 'PENDING_PAYMENT', $4, $5, 'CNY', $6, 0, $7, $8, 0, 0, $9, $10, $11, 1)`,
        [id, now, orderNo, customerId, JSON.stringify(q.items), q.subtotal, q.shipping, q.total, new Date(now.getTime() + TIMEOUT_MS), key, requestHash],
      );
      await c.query(
        `insert into order_events (id, order_id, from_status, to_status, actor, reason, at)
         values ($1, $2, null, 'PENDING_PAYMENT', $3, 'order created', $4)`,
        [uuidv7(), id, `customer:${customerId}`, now],
      );
      await c.query('commit');
      return { id, orderNo, status: 'PENDING_PAYMENT', totalAmount: q.total };
    } catch (err) {
      await c.query('rollback').catch(() => undefined);
      if ((err as { code?: string }).code === '23505' && key) {
        const existing = await this.findByKey(customerId, key);
        if (existing) return existing;
      }
      throw err;
    } finally {
      c.release();
    }
  }

  async applyPayment(paymentNo: string, amount: number, transactionId: string, paidAt: Date): Promise<PaidOrder | null> {
    // One statement (its own transaction): the payment's conditional update and the order's, together.
    const r = await this.pool.query(
      `with p as (
         update payments set status = 'SUCCEEDED', provider_transaction_id = $2, paid_at = $3, next_query_at = null,
           updated_at = now(), version = version + 1
         where payment_no = $1 and status = 'PENDING' and amount = $4
         returning id, order_id, amount, channel)
       update orders o set status = 'PAID', paid_amount = p.amount, paid_at = $3, paid_payment_id = p.id,
         updated_at = now(), version = o.version + 1
       from p where o.id = p.order_id and o.status in ('PENDING_PAYMENT', 'PAYING')
       returning o.id, o.order_no, o.total_amount, o.paid_amount, o.refunded_amount, o.version, p.id as payment_id, p.channel`,
      [paymentNo, transactionId, paidAt, amount],
    );
    const row = r.rows[0];
    if (!row) return null;
    return {
      orderId: row.id,
      orderNo: row.order_no,
      paymentId: row.payment_id,
      paymentNo,
      channel: row.channel,
      totalAmount: row.total_amount,
      paidAmount: row.paid_amount,
      refundedAmount: row.refunded_amount,
      version: row.version,
    };
  }
}

class SqliteStore implements FloorStore {
  private readonly db: SqliteDatabase;
  private readonly findKey: SqliteStatement;
  private readonly products: SqliteStatement;
  private readonly reserve: SqliteStatement;
  private readonly insertOrder: SqliteStatement;
  private readonly insertEvent: SqliteStatement;
  private readonly payPayment: SqliteStatement;
  private readonly payOrder: SqliteStatement;
  private readonly createTx: (customerId: string, lines: OrderLine[], key: string | null, hash: string) => CreatedOrder;
  private readonly payTx: (paymentNo: string, amount: number, txId: string, paidAt: number) => PaidOrder | null;

  constructor(path: string) {
    this.db = openSqlite(path);
    this.findKey = this.db.prepare('select id, order_no, status, total_amount from orders where customer_id = ? and idempotency_key = ? limit 1');
    this.products = this.db.prepare(
      `select id, sku, name, price_amount, active from products where merchant_id = 'default' and sku in (select value from json_each(?))`,
    );
    this.reserve = this.db.prepare('update products set stock = stock - ? where id = ? and stock >= ?');
    this.insertOrder = this.db.prepare(
      `insert into orders (id, merchant_id, created_at, updated_at, order_no, status, customer_id, items, currency,
         subtotal_amount, discount_amount, shipping_amount, total_amount, paid_amount, refunded_amount, expires_at,
         idempotency_key, request_hash, version)
       values (?, 'default', ?, ?, ?, 'PENDING_PAYMENT', ?, ?, 'CNY', ?, 0, ?, ?, 0, 0, ?, ?, ?, 1)`,
    );
    this.insertEvent = this.db.prepare(
      `insert into order_events (id, order_id, from_status, to_status, actor, reason, at) values (?, ?, null, 'PENDING_PAYMENT', ?, 'order created', ?)`,
    );
    this.payPayment = this.db.prepare(
      `update payments set status = 'SUCCEEDED', provider_transaction_id = ?, paid_at = ?, next_query_at = null, updated_at = ?,
         version = version + 1
       where payment_no = ? and status = 'PENDING' and amount = ? returning id, order_id, amount, channel`,
    );
    this.payOrder = this.db.prepare(
      `update orders set status = 'PAID', paid_amount = ?, paid_at = ?, paid_payment_id = ?, updated_at = ?, version = version + 1
       where id = ? and status in ('PENDING_PAYMENT', 'PAYING')
       returning id, order_no, total_amount, paid_amount, refunded_amount, version`,
    );
    this.createTx = this.db.transaction((customerId: string, lines: OrderLine[], key: string | null, hash: string) => {
      const rows = this.products.all(JSON.stringify(lines.map((l) => l.sku))) as Array<{ id: string; sku: string; name: string; price_amount: number; active: number }>;
      const bySku = new Map(rows.map((p) => [p.sku, p]));
      const priced: PricedLine[] = lines.map((l) => {
        const p = bySku.get(l.sku);
        if (!p || !p.active) throw new BadInput(`Unknown or unavailable SKU: ${l.sku}`);
        return { id: p.id, sku: p.sku, name: p.name, price: p.price_amount, quantity: l.quantity };
      });
      for (const l of priced) {
        if (!this.reserve.run(l.quantity, l.id, l.quantity).changes) throw new OutOfStock(`Not enough stock for ${l.sku}`);
      }
      const q = price(priced);
      const now = Date.now();
      const id = uuidv7();
      const orderNo = newOrderNo(new Date(now));
      this.insertOrder.run(id, now, now, orderNo, customerId, JSON.stringify(q.items), q.subtotal, q.shipping, q.total, now + TIMEOUT_MS, key, hash);
      this.insertEvent.run(uuidv7(), id, `customer:${customerId}`, now);
      return { id, orderNo, status: 'PENDING_PAYMENT', totalAmount: q.total };
    });
    this.payTx = this.db.transaction((paymentNo: string, amount: number, txId: string, paidAt: number) => {
      const now = Date.now();
      const p = this.payPayment.get(txId, paidAt, now, paymentNo, amount) as { id: string; order_id: string; amount: number; channel: string } | undefined;
      if (!p) return null;
      const o = this.payOrder.get(p.amount, paidAt, p.id, now, p.order_id) as
        | { id: string; order_no: string; total_amount: number; paid_amount: number; refunded_amount: number; version: number }
        | undefined;
      if (!o) return null;
      return {
        orderId: o.id,
        orderNo: o.order_no,
        paymentId: p.id,
        paymentNo,
        channel: p.channel,
        totalAmount: o.total_amount,
        paidAmount: o.paid_amount,
        refundedAmount: o.refunded_amount,
        version: o.version,
      };
    });
  }

  async ping(): Promise<void> {
    this.db.prepare('select 1').get();
  }

  async close(): Promise<void> {
    this.db.close();
  }

  async createOrder(customerId: string, lines: OrderLine[], key: string | null, requestHash: string): Promise<CreatedOrder> {
    if (key) {
      const row = this.findKey.get(customerId, key) as { id: string; order_no: string; status: string; total_amount: number } | undefined;
      if (row) return { id: row.id, orderNo: row.order_no, status: row.status, totalAmount: row.total_amount };
    }
    try {
      return this.createTx(customerId, lines, key, requestHash);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' && key) {
        const row = this.findKey.get(customerId, key) as { id: string; order_no: string; status: string; total_amount: number } | undefined;
        if (row) return { id: row.id, orderNo: row.order_no, status: row.status, totalAmount: row.total_amount };
      }
      throw err;
    }
  }

  async applyPayment(paymentNo: string, amount: number, transactionId: string, paidAt: Date): Promise<PaidOrder | null> {
    return this.payTx(paymentNo, amount, transactionId, paidAt.getTime());
  }
}
