export { StripeProvider } from './provider';
export { createStripeClient, PathPrefixHttpClient, toProviderError } from './client';
export {
  keyLivemode,
  parseApiBase,
  STRIPE_DEFAULT_API_BASE,
  STRIPE_DEFAULT_TIMEOUT_MS,
  STRIPE_WEBHOOK_TOLERANCE_SECONDS,
  type StripeConfig,
  type StripeEndpoint,
} from './config';
export {
  METADATA_PAYMENT_NO,
  METADATA_REFUND_NO,
  PAYMENT_INTENT_STATE,
  REFUND_STATE,
  toNotificationEvent,
} from './mapping';
