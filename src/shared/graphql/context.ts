import DataLoader from 'dataloader';
import type { AppConfig } from '../../config/config';
import type { CatalogService } from '../../catalog/catalog.service';
import type { OrdersService } from '../../orders/orders.service';
import type { OrderEvent } from '../../orders/order-event.entity';
import type { RealtimeService } from '../../realtime/realtime.service';
import type { User } from '../auth';
import type { Logger } from '../logger';

/** The application services, built once in main.ts and shared by every request. */
export interface Services {
  config: AppConfig;
  catalog: CatalogService;
  orders: OrdersService;
  realtime: RealtimeService;
}

/** Per-request batch loaders (one query per field per request, not per order). */
export interface Loaders {
  history: DataLoader<string, OrderEvent[]>;
}

export interface GraphQLContext {
  user: User | null;
  requestId: string;
  ip: string;
  log: Logger;
  services: Services;
  loaders: Loaders;
}

export function createLoaders(services: Services): Loaders {
  return {
    history: new DataLoader(async (ids) => {
      const byOrder = await services.orders.history(ids);
      return ids.map((id) => byOrder.get(id) ?? []);
    }),
  };
}
