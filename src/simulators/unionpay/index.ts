export {
  createUnionPaySimulator,
  UNIONPAY_REPLY_TIMEOUT_MS,
  UNIONPAY_RETRY_SCHEDULE_MS,
  UNIONPAY_SIMULATOR_MOUNT,
  type BuiltNotification,
  type PayInput,
  type PayOutcome,
  type PayResult,
  type RefundBehaviour,
  type UnionPaySimulator,
  type UnionPaySimulatorOptions,
} from './simulator';
export {
  generateUnionPayMerchantCredentials,
  randomMerId,
  type UnionPayMerchantCredentials,
} from './credentials';
export {
  baseFields,
  consumeResultFields,
  encodeNotification,
  refundResultFields,
  signUnionPayMessage,
  type UnionPayMessageSigner,
} from './messages';
export {
  createCaChain,
  createUnionPayPki,
  issueCertificate,
  issueMerchantCertificate,
  unionPaySignerCn,
  type IssuedCertificate,
  type IssueOptions,
  type NameAttribute,
  type UnionPayPki,
} from './pki';
export { UnionPayStore, type MerchantRegistration } from './store';
export type { DeliveryAttempt, SimulatorLogger } from '../shared/delivery';
