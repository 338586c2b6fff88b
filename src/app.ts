import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express from 'express';
import { GraphQLError, type DocumentNode, type ExecutionArgs } from 'graphql';
import { WebSocketServer } from 'ws';
import type { AppConfig } from './config/config';
import { CallbackProcessor } from './callbacks/processor';
import { notifyHandler } from './callbacks/notify.routes';
import { CatalogService } from './catalog/catalog.service';
import { checkoutRouter } from './checkout/checkout.routes';
import { OrdersService } from './orders/orders.service';
import { PaymentLifecycle } from './payments/lifecycle';
import { PaymentsService } from './payments/payments.service';
import { wireProviders, type ProviderWiring } from './payments/providers/wiring';
import { Outbox } from './realtime/outbox';
import { InProcessPubSub, RedisPubSub, type PubSub } from './realtime/pubsub';
import { RealtimeService } from './realtime/realtime.service';
import { ReconciliationService } from './reconciliation/reconciliation.service';
import { ReconciliationScheduler } from './reconciliation/scheduler';
import { signToken, userFromAuthorization, type User } from './shared/auth';
import { initOrm, type Orm } from './shared/db/orm';
import { seedDemoCatalog } from './shared/db/seed';
import { DomainError, formatClientError } from './shared/errors';
import { RequestContext, type GraphQLContext, type Services } from './shared/graphql/context';
import { GRAPHQL_BODY_LIMIT, TRUST_PROXY, graphqlPostHandler, tagRequest, type ContextFor } from './shared/graphql/http-entry';
import { assertComplexity, prepareDocument, shareQueryText, validationRules } from './shared/graphql/limits';
import { serveGraphqlWs, subscribe } from './shared/graphql/ws-server';
import { playgroundRouter } from './shared/graphql/playground';
import { RateLimiter } from './shared/graphql/rate-limit';
import { buildAppSchema } from './shared/graphql/schema';
import type { Logger } from './shared/logger';
import { Metrics } from './shared/metrics';

export interface App {
  server: Server;
  /** `http://host:port` the server listens on. */
  url: string;
  services: Services;
  orm: Orm;
  pubsub: PubSub;
  metrics: Metrics;
  providers: ProviderWiring;
  /** Graceful stop: no new connections, in-flight requests finished, sockets closed, resources released. */
  close(): Promise<void>;
}

/**
 * Wiring only: config → ORM → pub/sub → services → Express (health, metrics, playground, GraphQL) + graphql-ws on the
 * same port. Business logic lives in the services; this file decides what talks to what.
 */
export async function startApp(config: AppConfig, log: Logger): Promise<App> {
  // Listen first (answering 503 until ready), so the public URL is known before anything is built on it.
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', TRUST_PROXY);
  let ready = false;
  let notify: ReturnType<typeof notifyHandler> | null = null;
  let graphqlPost: ReturnType<typeof graphqlPostHandler> | null = null;
  const server = createServer((req, res) => {
    if (ready) return void (notify?.(req, res) || graphqlPost?.(req, res) || app(req, res));
    res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"starting"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const publicBaseUrl = config.publicBaseUrl ?? url;

  let orm: Orm;
  try {
    orm = await initOrm(config.database);
    if (config.autoMigrate) {
      const applied = await orm.getMigrator().up();
      if (applied.length) log.info({ migrations: applied.map((m) => m.name) }, 'applied database migrations');
    }
    if (config.seedDemo) await seedDemoCatalog(orm, log);
  } catch (err) {
    server.close();
    throw err;
  }

  const pubsub: PubSub = config.redisUrl ? new RedisPubSub(config.redisUrl, log) : new InProcessPubSub();
  const metrics = new Metrics();
  const outbox = new Outbox(orm, pubsub, log);
  const providers = wireProviders(config, publicBaseUrl, log);
  const catalog = new CatalogService(orm);
  const orders = new OrdersService(orm, catalog, outbox, config.shipping, config.paymentTimeoutSeconds, metrics);
  const realtime = new RealtimeService(orm, pubsub, metrics);
  const payments = new PaymentsService(
    orm,
    providers.registry,
    outbox,
    orders,
    { publicBaseUrl: () => publicBaseUrl, queryDelays: config.paymentQueryDelays },
    log,
  );
  orders.paymentCloser = payments;
  const lifecycle = new PaymentLifecycle(orm, payments, orders, config.paymentQueryDelays, log);
  const callbacks = new CallbackProcessor(orm, providers.registry, payments, log, metrics);
  const reconciliation = new ReconciliationService(orm, providers.registry, payments, log);
  const reconcileScheduler = new ReconciliationScheduler(reconciliation, config.reconcileDailyAt, log);
  const services: Services = { config, orm, catalog, orders, realtime, payments, lifecycle, reconciliation };

  const schema = buildAppSchema();

  app.use((req, res, next) => {
    res.locals.requestId = tagRequest(req, res, log);
    next();
  });

  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  // CORS on /graphql ahead of every router: the playground's GET /graphql route would otherwise answer the browsers'
  // OPTIONS preflight itself (Express answers OPTIONS for a path it has routes for), without the CORS headers.
  app.use('/graphql', cors({ exposedHeaders: ['x-request-id'], maxAge: 600 }));
  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    try {
      await orm.em.getConnection().execute('select 1');
      checks.database = 'ok';
    } catch {
      checks.database = 'unreachable';
    }
    if (config.redisUrl) {
      try {
        await pubsub.ping();
        checks.redis = 'ok';
      } catch {
        checks.redis = 'unreachable';
      }
    }
    const ready = Object.values(checks).every((v) => v === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });
  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  // Provider callbacks are answered in front of Express (callbacks/notify.routes.ts); simulators read raw bodies too.
  notify = notifyHandler(callbacks, log);
  for (const sim of providers.routes) app.use(sim.path, sim.router);

  app.use(checkoutRouter());
  app.use(
    playgroundRouter({
      graphqlPath: '/graphql',
      defaultHeaders: config.production
        ? undefined
        : { Authorization: `Bearer ${signToken(config.jwtSecret, { id: 'admin', role: 'admin' }, '30d')}` },
      defaultQuery: PLAYGROUND_EXAMPLES,
      title: 'Orders & payments — GraphQL',
    }),
  );

  // graphql-ws on the same port and path as HTTP GraphQL.
  const wsServer = new WebSocketServer({ server, path: '/graphql', maxPayload: 64 * 1024 });
  const wsCleanup = serveGraphqlWs<{ user: User }>(
    {
      schema,
      subscribe,
      jsonMessageReviver: shareQueryText,
      onConnect: (ctx) => {
        try {
          const user = userFromAuthorization(config.jwtSecret, ctx.connectionParams?.authorization);
          if (!user) return false;
          ctx.extra.user = user;
          return true;
        } catch {
          return false;
        }
      },
      onSubscribe: (ctx, _id, payload) => {
        const document = prepareDocument(schema, payload.query);
        if (Array.isArray(document)) return [...document];
        try {
          assertComplexity(schema, document as DocumentNode, payload.variables ?? undefined, payload.operationName);
        } catch (err) {
          return [err as GraphQLError];
        }
        // Held for the subscription's whole life; RequestContext makes loaders and a request id only when asked.
        const contextValue = new RequestContext(ctx.extra.user ?? null, ctx.extra.request.socket.remoteAddress ?? '', log, services);
        return {
          schema,
          document: document as DocumentNode,
          variableValues: payload.variables,
          operationName: payload.operationName,
          contextValue,
        } satisfies ExecutionArgs;
      },
      onNext: (_ctx, _id, _payload, args, result) => {
        if (!result.errors?.length) return;
        const requestId = (args.contextValue as GraphQLContext).requestId;
        return {
          ...result,
          errors: result.errors.map((e) =>
            formatClientError(e.toJSON(), e, (err) => log.error({ err, requestId }, 'unexpected error in a subscription')),
          ),
        };
      },
    },
    wsServer,
    log,
  );

  const limiter = new RateLimiter(config.rateLimitPerMinute);
  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    validationRules,
    introspection: true,
    csrfPrevention: true,
    stopOnTerminationSignals: false, // main.ts owns shutdown (close() stops Apollo among the rest)
    includeStacktraceInErrorResponses: false,
    formatError: (formatted, error) =>
      formatClientError(formatted, error, (err) => log.error({ err }, 'unexpected error answered as INTERNAL_SERVER_ERROR')),
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer: server }),
      ApolloServerPluginLandingPageDisabled(),
      // No HTTP caching of GraphQL answers here (every answer depends on its caller); without this Apollo computes
      // cache hints on every field of every request.
      ApolloServerPluginCacheControlDisabled(),
      { async serverWillStart() { return { async drainServer() { await wsCleanup.dispose(); } }; } },
      operationGuards(limiter),
      metricsPlugin(metrics),
    ],
  });
  await apollo.start();

  /** The operation context of an HTTP request: the bearer token's user (401 when the token is bad). */
  const contextFor: ContextFor = async (req, ip, requestId) => {
    let user: User | null;
    try {
      user = userFromAuthorization(config.jwtSecret, req.headers.authorization);
    } catch (err) {
      const message = err instanceof DomainError ? err.message : 'The token is not valid';
      throw new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
    }
    return new RequestContext(user, ip, log.child({ requestId }), services, requestId);
  };
  app.use(
    '/graphql',
    express.json({ limit: GRAPHQL_BODY_LIMIT }),
    expressMiddleware(apollo, { context: async ({ req, res }) => contextFor(req, req.ip ?? '', res.locals.requestId as string) }),
  );
  // The common case (POST with a JSON body) is answered in front of Express; the route above takes the rest.
  graphqlPost = graphqlPostHandler(apollo, contextFor, log);

  app.use((_req, res) => void res.status(404).json({ error: 'not found' }));
  app.use((err: Error & { status?: number; type?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) log.error({ err, requestId: res.locals.requestId }, 'unhandled HTTP error');
    res.status(status).json({ error: status === 500 ? 'internal server error' : err.message });
  });

  const timers = [
    setInterval(() => outbox.sweep().catch((err) => log.warn({ err: (err as Error).message }, 'outbox sweep failed')), 5000),
  ];
  for (const t of timers) t.unref();
  lifecycle.start();
  reconcileScheduler.start();

  ready = true;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const t of timers) clearInterval(t);
      await lifecycle.stop();
      await reconcileScheduler.stop();
      // Apollo's drain stops accepting, finishes in-flight requests, and (our plugin) disposes graphql-ws, which
      // closes every socket with 1001 and the WebSocket server.
      await apollo.stop();
      await outbox.flushDeletes();
      await providers.close();
      await pubsub.close();
      await orm.close(true);
    })());

  return { server, url, services, orm, pubsub, metrics, providers, close };
}

/** Rate limit for customers' mutations and the complexity limit, both after the operation is known. */
function operationGuards(limiter: RateLimiter): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, document, request, contextValue, schema }) {
          assertComplexity(schema, document, request.variables, request.operationName);
          if (operation?.operation !== 'mutation' || contextValue.user?.role === 'admin') return;
          const key = contextValue.user ? `user:${contextValue.user.id}` : `ip:${contextValue.ip}`;
          if (!limiter.hit(key)) {
            throw new GraphQLError('Too many requests; slow down', {
              extensions: { code: 'RATE_LIMITED', retryAfterSeconds: limiter.retryAfter(), http: { status: 429 } },
            });
          }
        },
      };
    },
  };
}

function metricsPlugin(metrics: Metrics): ApolloServerPlugin<GraphQLContext> {
  return {
    async requestDidStart() {
      const end = process.hrtime.bigint();
      return {
        async willSendResponse({ operation, operationName, errors, response }) {
          const labels = { operation: operationName ?? 'anonymous', type: operation?.operation ?? 'unknown' };
          const failed = Boolean(errors?.length) || (response.body.kind === 'single' && Boolean(response.body.singleResult.errors));
          metrics.graphqlRequests.inc({ ...labels, outcome: failed ? 'error' : 'ok' });
          metrics.graphqlDuration.observe(labels, Number(process.hrtime.bigint() - end) / 1e9);
        },
      };
    },
  };
}

const PLAYGROUND_EXAMPLES = `# Orders & payments. The Authorization header below is an admin token for development.
# Run one operation at a time with the ▶ button.

query Products {
  products { id sku name priceAmount currency stock active }
}

query Preview {
  previewOrder(input: { items: [{ sku: "TEA-001", quantity: 2 }], couponCode: "WELCOME10" }) {
    items { sku name unitPriceAmount quantity lineTotalAmount }
    subtotalAmount discountAmount shippingAmount totalAmount
  }
}

mutation CreateOrder {
  createOrder(input: {
    items: [{ sku: "TEA-001", quantity: 2 }]
    shippingAddress: { name: "Li Lei", phone: "13800138000", province: "Zhejiang", city: "Hangzhou", line1: "1 West Lake Rd" }
  }) { id orderNo status totalAmount expiresAt }
}

query Orders {
  orders(first: 10) { edges { cursor node { id orderNo status totalAmount history { from to actor reason at } } } pageInfo { hasNextPage endCursor } }
}

# Paste an order id, run this in its own tab, then change the order from another tab.
subscription Watch {
  paymentStatusChanged(orderId: "ORDER_ID") { orderNo orderStatus paymentStatus paidAmount occurredAt }
}
`;
