import { randomUUID } from 'node:crypto';
import DataLoader from 'dataloader';
import type { AppConfig } from '../../config/config';
import type { CatalogService } from '../../catalog/catalog.service';
import type { OrdersService } from '../../orders/orders.service';
import type { OrderEvent } from '../../orders/order-event.entity';
import type { RealtimeService } from '../../realtime/realtime.service';
import type { ReconciliationService } from '../../reconciliation/reconciliation.service';
import { Payment } from '../../payments/payment.entity';
import type { PaymentLifecycle } from '../../payments/lifecycle';
import type { PaymentsService } from '../../payments/payments.service';
import { Refund } from '../../payments/refund.entity';
import type { Orm } from '../db/orm';
import type { User } from '../auth';
import type { Logger } from '../logger';

/** The application services, built once in main.ts and shared by every request. */
export interface Services {
  config: AppConfig;
  orm: Orm;
  catalog: CatalogService;
  orders: OrdersService;
  realtime: RealtimeService;
  payments: PaymentsService;
  lifecycle: PaymentLifecycle;
  reconciliation: ReconciliationService;
}

/** Per-request batch loaders (one query per field per request, not per order). */
export interface Loaders {
  history: DataLoader<string, OrderEvent[]>;
  payments: DataLoader<string, Payment[]>;
  refunds: DataLoader<string, Refund[]>;
}

export interface GraphQLContext {
  user: User | null;
  requestId: string;
  ip: string;
  log: Logger;
  services: Services;
  loaders: Loaders;
}

function createLoaders(services: Services): Loaders {
  return {
    history: new DataLoader(async (ids) => {
      const byOrder = await services.orders.history(ids);
      return ids.map((id) => byOrder.get(id) ?? []);
    }),
    payments: byOrderId(services.orm, Payment),
    refunds: byOrderId(services.orm, Refund),
  };
}

/**
 * The context of one operation (an HTTP request, or a graphql-ws subscription for its whole life). A class, so every
 * context has one fixed shape, with its loaders created on first use and, on sockets, its request id only when
 * something logs it: a held subscription keeps its context, and the payment status event needs neither (heap
 * snapshots of held subscriptions, README "Performance").
 */
export class RequestContext implements GraphQLContext {
  private madeLoaders: Loaders | undefined;

  constructor(
    readonly user: User | null,
    readonly ip: string,
    readonly log: Logger,
    readonly services: Services,
    private id?: string,
  ) {}

  get requestId(): string {
    return (this.id ??= randomUUID());
  }

  get loaders(): Loaders {
    return (this.madeLoaders ??= createLoaders(this.services));
  }
}

/** Rows of an entity with an `orderId`, grouped per order, oldest first: one query for all the orders of a request. */
function byOrderId<T extends { orderId: string; id: string }>(orm: Orm, entity: new () => T): DataLoader<string, T[]> {
  return new DataLoader(async (ids) => {
    const rows = (await orm.em.fork().find(entity as never, { orderId: { $in: [...ids] } } as never, { orderBy: { id: 'asc' } } as never)) as T[];
    const byOrder = new Map<string, T[]>(ids.map((id) => [id, []]));
    for (const row of rows) byOrder.get(row.orderId)?.push(row);
    return ids.map((id) => byOrder.get(id) ?? []);
  });
}
