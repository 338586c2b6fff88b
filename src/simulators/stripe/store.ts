/**
 * In-memory state of the Stripe simulator: accounts (one per secret key, each with one webhook endpoint) and
 * their PaymentIntents, Charges, Refunds, BalanceTransactions, Events and idempotency records. Objects are kept in
 * Stripe's wire shape and copied on the way out. Nothing is persisted; a restart forgets everything.
 */
import { stripeId } from './credentials';
import type { WireBalanceTransaction, WireCharge, WireEvent, WirePaymentIntent, WireRefund } from './types';

export interface AccountRegistration {
  /** `sk_test_…` / `sk_live_…` (`rk_…` too): the Bearer key the adapter sends. */
  secretKey: string;
  /** The webhook endpoint's signing secret, `whsec_…`. */
  webhookSecret: string;
  /** Where events are POSTed; without it events are recorded but not delivered. */
  webhookUrl?: string;
  /**
   * Event types the endpoint subscribes to (`['*']` for all). Default: the ones this service handles:
   * `payment_intent.succeeded|payment_failed|canceled`, `charge.refunded`, `refund.created|updated|failed`.
   */
  enabledEvents?: readonly string[];
  /** Shown on the pay page; default `Stripe test account`. */
  name?: string;
}

export const DEFAULT_ENABLED_EVENTS: readonly string[] = [
  'payment_intent.succeeded',
  'payment_intent.payment_failed',
  'payment_intent.canceled',
  'charge.refunded',
  'refund.created',
  'refund.updated',
  'refund.failed',
];

export interface IdempotencyRecord {
  /** Request path without the mount prefix, e.g. `/v1/payment_intents`. */
  path: string;
  /** Canonical JSON of the decoded parameters. */
  fingerprint: string;
  status: number;
  body: unknown;
  requestId: string;
  /** Epoch ms. */
  createdAt: number;
}

export interface Account {
  id: string;
  name: string;
  secretKey: string;
  livemode: boolean;
  /** Newest first; every one signs while a secret is being rolled. */
  webhookSecrets: string[];
  webhookUrl?: string;
  enabledEvents: ReadonlySet<string>;
  /** The last `Stripe-Version` an API request named; events are rendered for it. */
  apiVersion: string | null;
  intents: Map<string, WirePaymentIntent>;
  charges: Map<string, WireCharge>;
  refunds: Map<string, WireRefund>;
  balanceTransactions: Map<string, WireBalanceTransaction>;
  events: Map<string, WireEvent>;
  idempotency: Map<string, IdempotencyRecord>;
}

export class StripeStore {
  private readonly accounts = new Map<string, Account>();
  /** Object id → its account, for the customer's side (pay page, confirm) which holds no key. */
  private readonly owners = new Map<string, Account>();
  private readonly byClientSecret = new Map<string, WirePaymentIntent>();

  registerAccount(r: AccountRegistration): Account {
    if (!/^[sr]k_(test|live)_\S+$/.test(r.secretKey)) throw new Error('secretKey must look like sk_test_… or sk_live_…');
    if (!r.webhookSecret || /\s/.test(r.webhookSecret)) throw new Error('webhookSecret must be a whsec_… value');
    const existing = this.accounts.get(r.secretKey);
    if (existing) {
      // Re-registering updates the endpoint and keeps the objects.
      existing.webhookSecrets = [r.webhookSecret];
      existing.webhookUrl = r.webhookUrl;
      existing.enabledEvents = new Set(r.enabledEvents ?? DEFAULT_ENABLED_EVENTS);
      if (r.name) existing.name = r.name;
      return existing;
    }
    const account: Account = {
      id: stripeId('acct', 16),
      name: r.name ?? 'Stripe test account',
      secretKey: r.secretKey,
      livemode: /^[sr]k_live_/.test(r.secretKey),
      webhookSecrets: [r.webhookSecret],
      webhookUrl: r.webhookUrl,
      enabledEvents: new Set(r.enabledEvents ?? DEFAULT_ENABLED_EVENTS),
      apiVersion: null,
      intents: new Map(),
      charges: new Map(),
      refunds: new Map(),
      balanceTransactions: new Map(),
      events: new Map(),
      idempotency: new Map(),
    };
    this.accounts.set(r.secretKey, account);
    return account;
  }

  account(secretKey: string): Account | undefined {
    return this.accounts.get(secretKey);
  }

  /** The account owning an object id (`pi_…`, `ch_…`, `re_…`, `evt_…`). */
  ownerOf(id: string): Account | undefined {
    return this.owners.get(id);
  }

  addIntent(account: Account, pi: WirePaymentIntent): void {
    account.intents.set(pi.id, pi);
    this.owners.set(pi.id, account);
    this.byClientSecret.set(pi.client_secret, pi);
  }

  /** An intent by id (any account) or by client secret. */
  findIntent(ref: { payment_intent?: string; client_secret?: string }): { account: Account; pi: WirePaymentIntent } | undefined {
    let pi: WirePaymentIntent | undefined;
    if (ref.payment_intent) pi = this.owners.get(ref.payment_intent)?.intents.get(ref.payment_intent);
    else if (ref.client_secret) pi = this.byClientSecret.get(ref.client_secret);
    const account = pi && this.owners.get(pi.id);
    return pi && account ? { account, pi } : undefined;
  }

  addCharge(account: Account, ch: WireCharge): void {
    account.charges.set(ch.id, ch);
    this.owners.set(ch.id, account);
  }

  addRefund(account: Account, re: WireRefund): void {
    account.refunds.set(re.id, re);
    this.owners.set(re.id, account);
  }

  addBalanceTransaction(account: Account, txn: WireBalanceTransaction): void {
    account.balanceTransactions.set(txn.id, txn);
    this.owners.set(txn.id, account);
  }

  addEvent(account: Account, evt: WireEvent): void {
    account.events.set(evt.id, evt);
    this.owners.set(evt.id, account);
  }

  /** Any object of `account` by id, for `expand`. */
  lookup(account: Account, id: string): object | undefined {
    return (
      account.intents.get(id) ??
      account.charges.get(id) ??
      account.refunds.get(id) ??
      account.balanceTransactions.get(id) ??
      account.events.get(id)
    );
  }

  /** The refunds of a charge, newest first. */
  refundsOfCharge(account: Account, chargeId: string): WireRefund[] {
    return [...account.refunds.values()].filter((r) => r.charge === chargeId).reverse();
  }
}
