export { UnionPayProvider, type UnionPayPage, type UnionPayRefundResult } from './provider';
export { UnionPayHttpClient } from './client';
export {
  UNIONPAY_DEFAULT_TIMEOUT_MS,
  UNIONPAY_FRONT_FORM_PATH,
  UNIONPAY_PRODUCTION_GATEWAY_URL,
  UNIONPAY_TEST_GATEWAY_URL,
  unionPayEndpoints,
  type UnionPayConfig,
  type UnionPayEndpoints,
} from './config';
export { FRONT_FORM_CSP, FRONT_FORM_HEADERS, renderFrontForm } from './form';
export * as unionPayCrypto from './crypto';
export * from './types';
