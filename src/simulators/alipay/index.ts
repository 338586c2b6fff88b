export {
  ALIPAY_RETRY_SCHEDULE_MS,
  ALIPAY_SIMULATOR_MOUNT,
  createAlipaySimulator,
  type AlipaySimulator,
  type AlipaySimulatorOptions,
  type PayInput,
  type PayOutcome,
  type PayResult,
  type RefundBehaviour,
} from './simulator';
export { generateAlipayAppCredentials, type AlipayAppCredentials, type GenerateAppCredentialsOptions } from './credentials';
export { buildNotification, newNotifyId, type BuildNotificationInput, type BuiltNotification } from './notifications';
export { AlipayStore, type AppRecord, type AppRegistration, type StoredRefund, type StoredTrade, type StoredTradeStatus } from './store';
export type { DeliveryAttempt, SimulatorLogger } from '../shared/delivery';
