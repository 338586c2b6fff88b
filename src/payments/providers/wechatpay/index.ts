export { WechatPayProvider } from './provider';
export { WechatPayHttpClient } from './client';
export { WECHATPAY_DEFAULT_BASE_URL, WECHATPAY_DEFAULT_TIMEOUT_MS, type WechatPayConfig } from './config';
export * as wechatPayCrypto from './crypto';
export type * from './types';
