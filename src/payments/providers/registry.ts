import { CHANNEL_PROVIDER, type PaymentChannel, type ProviderName } from '../channels';
import type { PaymentProvider } from './provider';

/**
 * Maps (merchant, channel) to the adapter holding that merchant's credentials. Each merchant registers at most one
 * adapter per provider; a channel whose provider has no adapter for the merchant is unavailable to it.
 * Multi-merchant and sub-merchant (服务商) modes register one adapter per merchant here, nothing else changes.
 */
export class ProviderRegistry {
  private readonly byMerchant = new Map<string, Map<ProviderName, PaymentProvider>>();

  register(merchantId: string, provider: PaymentProvider): void {
    let providers = this.byMerchant.get(merchantId);
    if (!providers) this.byMerchant.set(merchantId, (providers = new Map()));
    if (providers.has(provider.name)) {
      throw new Error(`Merchant ${merchantId} already has a ${provider.name} provider registered`);
    }
    for (const channel of provider.channels) {
      if (CHANNEL_PROVIDER[channel] !== provider.name) {
        throw new Error(`Provider ${provider.name} cannot serve channel ${channel}`);
      }
    }
    providers.set(provider.name, provider);
  }

  /** The adapter for a channel, or undefined when the merchant cannot take it. */
  forChannel(merchantId: string, channel: PaymentChannel): PaymentProvider | undefined {
    const provider = this.byMerchant.get(merchantId)?.get(CHANNEL_PROVIDER[channel]);
    return provider?.channels.includes(channel) ? provider : undefined;
  }

  /** The merchants that can take a channel. */
  merchantsFor(channel: PaymentChannel): string[] {
    return [...this.byMerchant.keys()].filter((merchantId) => this.forChannel(merchantId, channel));
  }

  byName(merchantId: string, name: string): PaymentProvider | undefined {
    return this.byMerchant.get(merchantId)?.get(name as ProviderName);
  }

  channels(merchantId: string): PaymentChannel[] {
    return [...(this.byMerchant.get(merchantId)?.values() ?? [])].flatMap((p) => [...p.channels]);
  }
}
