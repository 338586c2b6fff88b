import Stripe from 'stripe';
import { ProviderNetworkError, ProviderRejectedError } from '../errors';
import { parseApiBase, STRIPE_DEFAULT_TIMEOUT_MS, type StripeConfig } from './config';

const PROVIDER = 'stripe';

/**
 * stripe-node's Node HTTP client with a path prefix in front of every request path. stripe-node builds each path
 * from an absolute `/v1/…` (its `basePath` is not configurable), so an API mounted under a prefix (the simulator's
 * `/simulator/stripe`) needs the prefix added at the transport. `HttpClient` is the library's documented extension
 * point (`httpClient` option).
 */
export class PathPrefixHttpClient implements Stripe.HttpClient {
  constructor(
    private readonly prefix: string,
    private readonly inner: Stripe.HttpClient = Stripe.createNodeHttpClient(),
  ) {}

  getClientName(): string {
    return `${this.inner.getClientName()}+prefix`;
  }

  makeRequest(...args: Parameters<Stripe.HttpClient['makeRequest']>): ReturnType<Stripe.HttpClient['makeRequest']> {
    const [host, port, path, ...rest] = args;
    return this.inner.makeRequest(host, port, `${this.prefix}${path}`, ...rest);
  }
}

/** A stripe-node instance for `config`: endpoint from `apiBase`, timeout, no implicit retries, no telemetry. */
export function createStripeClient(config: StripeConfig): Stripe {
  const endpoint = parseApiBase(config.apiBase);
  return new Stripe(config.secretKey, {
    host: endpoint.host,
    port: endpoint.port,
    protocol: endpoint.protocol,
    ...(endpoint.pathPrefix ? { httpClient: new PathPrefixHttpClient(endpoint.pathPrefix) } : {}),
    timeout: config.timeoutMs ?? STRIPE_DEFAULT_TIMEOUT_MS,
    maxNetworkRetries: config.maxNetworkRetries ?? 0,
    telemetry: false,
    appInfo: { name: 'order-payment-service' },
  });
}

/**
 * Sorts a stripe-node failure into the provider error tree:
 * - no answer (StripeConnectionError: refused, reset, timeout), an unreadable answer, 5xx (StripeAPIError) and
 *   429 (StripeRateLimitError: nothing happened, try later) → ProviderNetworkError;
 * - an answer that says no (invalid request, card, authentication, permission, idempotency) →
 *   ProviderRejectedError carrying Stripe's `code` (`resource_missing`, `payment_intent_unexpected_state`, …), or
 *   for errors without a code the error type (`authentication_error`, `idempotency_error`, …), and the HTTP status.
 */
export function toProviderError(err: unknown, what: string): Error {
  if (err instanceof ProviderNetworkError || err instanceof ProviderRejectedError) return err;
  if (!(err instanceof Stripe.errors.StripeError)) {
    // Thrown before or after the exchange without a Stripe error (argument validation, a bug): outcome unknown.
    return new ProviderNetworkError(`Stripe ${what} failed: ${err instanceof Error ? err.message : String(err)}`, PROVIDER, {
      cause: err,
    });
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : undefined;
  const message = `Stripe ${what}: ${err.message || err.type}`;
  if (
    err instanceof Stripe.errors.StripeConnectionError ||
    err instanceof Stripe.errors.StripeAPIError ||
    err instanceof Stripe.errors.StripeRateLimitError ||
    (status !== undefined && status >= 500)
  ) {
    return new ProviderNetworkError(message, PROVIDER, { cause: err });
  }
  const code =
    err.code ||
    (err instanceof Stripe.errors.StripeAuthenticationError
      ? 'authentication_error'
      : err instanceof Stripe.errors.StripePermissionError
        ? 'permission_error'
        : err instanceof Stripe.errors.StripeIdempotencyError
          ? 'idempotency_error'
          : err.rawType || 'stripe_error');
  return new ProviderRejectedError(message, PROVIDER, code, status);
}
