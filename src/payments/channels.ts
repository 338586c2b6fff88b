/**
 * Payment channels of the contract and the provider that serves each.
 * A channel is what a customer picks; a provider is the company whose wire protocol carries it.
 */
export enum PaymentChannel {
  WECHAT_NATIVE = 'WECHAT_NATIVE',
  WECHAT_JSAPI = 'WECHAT_JSAPI',
  WECHAT_H5 = 'WECHAT_H5',
  ALIPAY_QR = 'ALIPAY_QR',
  ALIPAY_PAGE = 'ALIPAY_PAGE',
  ALIPAY_WAP = 'ALIPAY_WAP',
  UNIONPAY_QR = 'UNIONPAY_QR',
  UNIONPAY_GATEWAY = 'UNIONPAY_GATEWAY',
  STRIPE_CARD = 'STRIPE_CARD',
}

export type ProviderName = 'wechatpay' | 'alipay' | 'unionpay' | 'stripe';

export const CHANNEL_PROVIDER: Readonly<Record<PaymentChannel, ProviderName>> = {
  WECHAT_NATIVE: 'wechatpay',
  WECHAT_JSAPI: 'wechatpay',
  WECHAT_H5: 'wechatpay',
  ALIPAY_QR: 'alipay',
  ALIPAY_PAGE: 'alipay',
  ALIPAY_WAP: 'alipay',
  UNIONPAY_QR: 'unionpay',
  UNIONPAY_GATEWAY: 'unionpay',
  STRIPE_CARD: 'stripe',
};
