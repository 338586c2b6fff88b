import express, { type Router } from 'express';
import type { AppConfig } from '../../config/config';
import { DEFAULT_MERCHANT_ID } from '../../shared/db/entity';
import type { Logger } from '../../shared/logger';
import { createAlipaySimulator, generateAlipayAppCredentials, type AlipaySimulator } from '../../simulators/alipay';
import type { SimulatorLogger } from '../../simulators/shared/delivery';
import { createUnionPaySimulator, type UnionPaySimulator } from '../../simulators/unionpay';
import { createStripeSimulator, generateStripeCredentials, type StripeSimulator } from '../../simulators/stripe';
import { createWechatPaySimulator, generateMerchantCredentials, type WechatPaySimulator } from '../../simulators/wechatpay';
import { AlipayProvider } from './alipay';
import type { PaymentProvider } from './provider';
import { ProviderRegistry } from './registry';
import { StripeProvider } from './stripe';
import { UNIONPAY_FRONT_FORM_PATH, UnionPayProvider, type UnionPayConfig } from './unionpay';
import { WechatPayProvider } from './wechatpay';

/** The running simulators by provider, for demo links and tests. */
export interface Simulators {
  wechatpay?: WechatPaySimulator;
  alipay?: AlipaySimulator;
  stripe?: StripeSimulator;
  unionpay?: UnionPaySimulator;
}

export interface ProviderWiring {
  registry: ProviderRegistry;
  /** Simulator routers to mount (PAYMENT_SIMULATOR=on), each at its contract path, before any body parser. */
  routes: Array<{ path: string; router: Router }>;
  simulator: Simulators;
  close(): Promise<void>;
}

interface SimulatorHandle<C> {
  path: string;
  router: Router;
  close(): void;
  /** Generates merchant credentials, registers them at the simulator and answers the adapter's config. */
  merchantConfig(): C;
}

/**
 * One provider: its adapter from configured credentials, or (PAYMENT_SIMULATOR=on and no credentials) from credentials
 * generated at start and registered at the built-in simulator, which the adapter then reaches over HTTP like the real
 * provider. The simulator is mounted whenever simulators are on, so people can pay on "the phone".
 */
interface ProviderEntry<C, S> {
  configured: C | undefined;
  simulator: (publicBaseUrl: string, timeScale: number, logger: SimulatorLogger) => S & SimulatorHandle<C>;
  adapter: (config: C) => PaymentProvider;
  expose: (sims: Simulators, sim: S) => void;
}

/**
 * Builds the provider registry for the default merchant from the configuration. Adding a provider is one entry here;
 * nothing else in the service changes.
 */
export function wireProviders(config: AppConfig, publicBaseUrl: string, log: Logger): ProviderWiring {
  const registry = new ProviderRegistry();
  const wiring: ProviderWiring = {
    registry,
    routes: [],
    simulator: {},
    async close() {
      for (const close of closers) close();
    },
  };
  const closers: Array<() => void> = [];
  const simLog = log.child({ component: 'simulator' });

  const entries: Array<ProviderEntry<any, any>> = [
    {
      configured: config.wechatpay,
      simulator: (base, timeScale, logger) => {
        const sim = createWechatPaySimulator({ publicBaseUrl: base, timeScale, logger });
        return Object.assign(sim, {
          path: '/simulator/wechatpay',
          merchantConfig: () => sim.adapterConfig(generateMerchantCredentials()),
        });
      },
      adapter: (c) => new WechatPayProvider(c),
      expose: (sims, sim) => (sims.wechatpay = sim),
    } satisfies ProviderEntry<NonNullable<AppConfig['wechatpay']>, WechatPaySimulator>,
    {
      configured: config.alipay,
      simulator: (base, timeScale, logger) => {
        const sim = createAlipaySimulator({ publicBaseUrl: base, timeScale, logger });
        return Object.assign(sim, {
          path: '/simulator/alipay',
          merchantConfig: () => sim.adapterConfig(generateAlipayAppCredentials()),
        });
      },
      adapter: (c) => new AlipayProvider(c),
      expose: (sims, sim) => (sims.alipay = sim),
    } satisfies ProviderEntry<NonNullable<AppConfig['alipay']>, AlipaySimulator>,
    {
      configured: config.stripe,
      simulator: (base, timeScale, logger) => {
        const sim = createStripeSimulator({ publicBaseUrl: base, timeScale, logger });
        return Object.assign(sim, {
          path: '/simulator/stripe',
          merchantConfig: () => sim.adapterConfig({ ...generateStripeCredentials(), webhookUrl: `${base}/notify/stripe` }),
        });
      },
      adapter: (c) => new StripeProvider(c),
      expose: (sims, sim) => (sims.stripe = sim),
    } satisfies ProviderEntry<NonNullable<AppConfig['stripe']>, StripeSimulator>,
    {
      configured: config.unionpay && { ...config.unionpay, frontFormUrl: `${publicBaseUrl}${UNIONPAY_FRONT_FORM_PATH}` },
      simulator: (base, timeScale, logger) => {
        const sim = createUnionPaySimulator({ publicBaseUrl: base, timeScale, logger });
        return Object.assign(sim, {
          path: '/simulator/unionpay',
          merchantConfig: () => sim.adapterConfig(sim.issueMerchantCredentials()),
        });
      },
      adapter: (c) => {
        const provider = new UnionPayProvider(c);
        // UNIONPAY_GATEWAY's redirectUrl is this page: it checks our own signature, then auto-submits the form to
        // the gateway (UnionPay's front gateway takes a browser POST, the contract hands the client a URL).
        wiring.routes.push({
          path: UNIONPAY_FRONT_FORM_PATH,
          router: express.Router().get('/', (req, res) => {
            const page = provider.frontFormPage(new URL(req.originalUrl, 'http://local').search);
            res.status(page.status).set(page.headers).type(page.contentType).send(page.body);
          }),
        });
        return provider;
      },
      expose: (sims, sim) => (sims.unionpay = sim),
    } satisfies ProviderEntry<UnionPayConfig, UnionPaySimulator>,
  ];

  for (const entry of entries) {
    const sim = config.paymentSimulator ? entry.simulator(publicBaseUrl, config.simulatorTimeScale, simLog) : null;
    if (sim) {
      wiring.routes.push({ path: sim.path, router: sim.router });
      closers.push(() => sim.close());
      entry.expose(wiring.simulator, sim);
    }
    const adapterConfig = entry.configured ?? sim?.merchantConfig();
    if (adapterConfig) registry.register(DEFAULT_MERCHANT_ID, entry.adapter(adapterConfig));
  }
  return wiring;
}
