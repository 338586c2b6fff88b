import 'reflect-metadata';
import { startApp, type App } from './app';
import type { AppConfig } from './config/config';
import { signToken } from './shared/auth';
import { ConfigError, loadConfig } from './config/config';
import { createLogger } from './shared/logger';

/** `npm start`: read the configuration, start the service, stop gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.problems) console.error(`config error: ${line}`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const app = await startApp(config, log);
  log.info(
    { url: app.url, database: config.database.driver, redis: Boolean(config.redisUrl), simulators: config.paymentSimulator },
    `serving GraphQL at ${app.url}/graphql (playground in a browser, graphql-ws on the same path)`,
  );

  if (!config.production && config.seedDemo && config.paymentSimulator) await printDemoLink(app, config);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('graceful shutdown took more than 15 s; exiting');
      process.exit(1);
    }, 15_000);
    force.unref();
    app.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * Development only: a demo customer's token and a fresh order's checkout link, so a newcomer goes from install to a
 * paid order in a minute (open the link, pick a channel, press Pay on the simulator's phone page).
 */
async function printDemoLink(app: App, config: AppConfig): Promise<void> {
  const customer = { id: 'demo-customer', role: 'customer' as const };
  const token = signToken(config.jwtSecret, customer, '24h');
  const order = await app.services.orders.create(customer, { items: [{ sku: 'TEA-001', quantity: 1 }] }).catch(() => null);
  if (!order) return;
  const admin = signToken(config.jwtSecret, { id: 'admin', role: 'admin' }, '24h');
  console.log(
    [
      '',
      '  Demo (development only):',
      `    checkout page   ${app.url}/checkout/${order.orderNo}#token=${token}`,
      `    playground      ${app.url}/graphql   (admin token pre-filled)`,
      `    customer token  ${token}`,
      `    admin token     ${admin}`,
      '',
    ].join('\n'),
  );
}

main().catch((err) => {
  console.error('failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
