export {
  createStripeSimulator,
  STRIPE_RETRY_SCHEDULE_MS,
  STRIPE_SIMULATOR_DEFAULT_API_VERSION,
  STRIPE_SIMULATOR_MOUNT,
  type BuildEventInput,
  type ConfirmInput,
  type ConfirmOutcome,
  type ConfirmResult,
  type RefundBehaviour,
  type SignedEvent,
  type StripeSimulator,
  type StripeSimulatorOptions,
} from './simulator';
export { generateStripeCredentials, randomBase62, stripeId, type StripeCredentials } from './credentials';
export { computeSignature, stripeSignatureHeader, type SignatureOverrides } from './signature';
export { encodeForm, FormError, parseForm, type FormObject, type FormValue } from './form';
export { DEFAULT_ENABLED_EVENTS, StripeStore, type Account, type AccountRegistration } from './store';
export type * from './types';
export type { DeliveryAttempt, SimulatorLogger } from '../shared/delivery';
