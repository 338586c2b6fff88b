import type { Router } from 'express';
import type { AppConfig } from '../../config/config';
import { DEFAULT_MERCHANT_ID } from '../../shared/db/entity';
import type { Logger } from '../../shared/logger';
import { createWechatPaySimulator, generateMerchantCredentials, type WechatPaySimulator } from '../../simulators/wechatpay';
import { WechatPayProvider } from './wechatpay';
import { ProviderRegistry } from './registry';

export interface ProviderWiring {
  registry: ProviderRegistry;
  /** Simulator routers to mount (PAYMENT_SIMULATOR=on), each at its contract path. */
  simulators: Array<{ path: string; router: Router }>;
  /** The running simulators by provider, for people's demo links and for tests. */
  simulator: { wechatpay?: WechatPaySimulator };
  close(): Promise<void>;
}

/**
 * Builds the provider registry for the default merchant. A provider with credentials in the environment talks to its
 * configured base URL (the real one by default). Without credentials and with PAYMENT_SIMULATOR=on, credentials are
 * generated at start and the adapter is pointed at the built-in simulator over HTTP, exactly as at the real provider.
 */
export function wireProviders(config: AppConfig, publicBaseUrl: string, log: Logger): ProviderWiring {
  const registry = new ProviderRegistry();
  const simulators: ProviderWiring['simulators'] = [];
  const closers: Array<() => void> = [];
  const simLog = log.child({ component: 'simulator' });

  const wechat = config.paymentSimulator
    ? createWechatPaySimulator({ publicBaseUrl, timeScale: config.simulatorTimeScale, logger: simLog })
    : null;
  if (wechat) {
    simulators.push({ path: '/simulator/wechatpay', router: wechat.router });
    closers.push(() => wechat.close());
  }
  if (config.wechatpay) {
    registry.register(DEFAULT_MERCHANT_ID, new WechatPayProvider(config.wechatpay));
  } else if (wechat) {
    registry.register(DEFAULT_MERCHANT_ID, new WechatPayProvider(wechat.adapterConfig(generateMerchantCredentials())));
  }

  return {
    registry,
    simulators,
    simulator: { wechatpay: wechat ?? undefined },
    async close() {
      for (const close of closers) close();
    },
  };
}
