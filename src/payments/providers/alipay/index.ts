export { AlipayProvider, type ReturnVerification } from './provider';
export { AlipayClient } from './client';
export { ALIPAY_DEFAULT_GATEWAY, ALIPAY_DEFAULT_TIMEOUT_MS, type AlipayConfig } from './config';
export * as alipayCrypto from './crypto';
export type * from './types';
