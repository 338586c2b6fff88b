export {
  createWechatPaySimulator,
  WECHATPAY_RETRY_SCHEDULE_MS,
  WECHATPAY_SIMULATOR_MOUNT,
  type PayInput,
  type PayOutcome,
  type PayResult,
  type RefundBehaviour,
  type WechatPaySimulator,
  type WechatPaySimulatorOptions,
} from './simulator';
export { generateMerchantCredentials, generatePublicKeyId, type MerchantCredentials } from './credentials';
export { generateRsaKeyPair, type RsaKeyPairPem } from '../shared/credentials';
export {
  buildNotification,
  signNotification,
  type BuildNotificationInput,
  type BuiltNotification,
  type NotificationSigner,
  type SignOverrides,
} from './notifications';
export { WechatPayStore, type MerchantRegistration } from './store';
export type { DeliveryAttempt, SimulatorLogger } from '../shared/delivery';
