/**
 * Stripe v1 wire shapes the simulator writes (API version 2022-11-15 and later: `latest_charge` instead of
 * `charges`, no `refunds` list on charges). Only the fields this service or stripe-node reads, plus the common
 * ones a developer expects to see; Stripe sends more. Source: the Stripe API reference (PaymentIntent, Charge,
 * Refund, BalanceTransaction, Event objects).
 */

export type Metadata = Record<string, string>;

export type PaymentIntentStatus =
  | 'requires_payment_method'
  | 'requires_confirmation'
  | 'requires_action'
  | 'processing'
  | 'requires_capture'
  | 'canceled'
  | 'succeeded';

export interface LastPaymentError {
  type: 'card_error';
  code: string;
  decline_code?: string;
  message: string;
  charge?: string;
  doc_url?: string;
}

export interface WirePaymentIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_capturable: number;
  amount_received: number;
  automatic_payment_methods: { enabled: boolean; allow_redirects?: 'always' | 'never' } | null;
  canceled_at: number | null;
  cancellation_reason: string | null;
  capture_method: 'automatic' | 'automatic_async';
  client_secret: string;
  confirmation_method: 'automatic';
  created: number;
  currency: string;
  customer: null;
  description: string | null;
  last_payment_error: LastPaymentError | null;
  latest_charge: string | WireCharge | null;
  livemode: boolean;
  metadata: Metadata;
  next_action: null;
  payment_method: string | null;
  payment_method_types: string[];
  receipt_email: string | null;
  statement_descriptor: string | null;
  statement_descriptor_suffix: string | null;
  status: PaymentIntentStatus;
}

export interface WireCharge {
  id: string;
  object: 'charge';
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  balance_transaction: string | WireBalanceTransaction | null;
  billing_details: { address: null; email: null; name: null; phone: null };
  captured: boolean;
  created: number;
  currency: string;
  description: string | null;
  failure_code: string | null;
  failure_message: string | null;
  livemode: boolean;
  metadata: Metadata;
  outcome: {
    network_status: 'approved_by_network' | 'declined_by_network';
    reason: string | null;
    risk_level: 'normal';
    seller_message: string;
    type: 'authorized' | 'issuer_declined';
  };
  paid: boolean;
  payment_intent: string | WirePaymentIntent;
  payment_method: string;
  payment_method_details: {
    type: 'card';
    card: { brand: string; country: string; exp_month: number; exp_year: number; funding: string; last4: string };
  };
  refunded: boolean;
  status: 'succeeded' | 'pending' | 'failed';
}

export type RefundStatus = 'pending' | 'requires_action' | 'succeeded' | 'failed' | 'canceled';

export interface WireRefund {
  id: string;
  object: 'refund';
  amount: number;
  balance_transaction: string | WireBalanceTransaction | null;
  charge: string | WireCharge;
  created: number;
  currency: string;
  failure_balance_transaction?: string | WireBalanceTransaction;
  failure_reason?: string;
  metadata: Metadata;
  payment_intent: string | WirePaymentIntent;
  reason: 'duplicate' | 'fraudulent' | 'requested_by_customer' | null;
  receipt_number: null;
  status: RefundStatus;
}

export type BalanceTransactionType = 'charge' | 'refund' | 'refund_failure';

export interface WireBalanceTransaction {
  id: string;
  object: 'balance_transaction';
  amount: number;
  available_on: number;
  created: number;
  currency: string;
  description: string | null;
  exchange_rate: null;
  fee: number;
  fee_details: Array<{ amount: number; application: null; currency: string; description: string; type: 'stripe_fee' }>;
  net: number;
  reporting_category: BalanceTransactionType;
  source: string;
  status: 'pending' | 'available';
  type: BalanceTransactionType;
}

export interface WireEvent {
  id: string;
  object: 'event';
  api_version: string | null;
  created: number;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
  livemode: boolean;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

export interface WireList<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  url: string;
}

export interface WireSearchResult<T> {
  object: 'search_result';
  data: T[];
  has_more: boolean;
  next_page: string | null;
  url: string;
}

export interface WireError {
  type: 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';
  code?: string;
  decline_code?: string;
  message: string;
  param?: string;
  doc_url?: string;
  payment_intent?: WirePaymentIntent;
}
