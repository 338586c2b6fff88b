/**
 * Credentials and endpoint of one Stripe account (one secret key, one webhook endpoint).
 */
export interface StripeConfig {
  /** The account's secret key, `sk_test_…` or `sk_live_…` (restricted keys `rk_…` work too). */
  secretKey: string;
  /** The webhook endpoint's signing secret, `whsec_…` (the whole string is the HMAC key). */
  webhookSecret: string;
  /**
   * Where the API lives; default `https://api.stripe.com`. A path prefix is allowed, e.g. the simulator's
   * `http://127.0.0.1:4000/simulator/stripe` (requests then go to `…/simulator/stripe/v1/…`); a trailing `/v1` is
   * accepted and dropped, so `…/simulator/stripe/v1` means the same.
   *
   * stripe-node itself only takes `host`/`port`/`protocol` (its resources carry absolute `/v1/…` paths and the
   * `basePath` field is not a constructor option), so a prefix is applied by a small `HttpClient` wrapper
   * (`PathPrefixHttpClient`) around the library's own Node client.
   */
  apiBase?: string;
  /** Per-attempt request timeout in milliseconds (stripe-node's `timeout`). Default 10000. */
  timeoutMs?: number;
  /**
   * stripe-node's automatic retries of failed connections, 409s and 5xx (same idempotency key). Default 0: the
   * adapter answers ProviderNetworkError within `timeoutMs` and the caller retries with the same merchant numbers.
   */
  maxNetworkRetries?: number;
}

export const STRIPE_DEFAULT_API_BASE = 'https://api.stripe.com';
export const STRIPE_DEFAULT_TIMEOUT_MS = 10_000;
/** Seconds a webhook's `t=` may lag behind our clock (stripe-node's default, Stripe's recommendation). */
export const STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300;

export interface StripeEndpoint {
  protocol: 'http' | 'https';
  host: string;
  port: number;
  /** `''` or a prefix such as `/simulator/stripe` (no trailing slash). */
  pathPrefix: string;
}

/** Splits `apiBase` into what stripe-node takes (`protocol`, `host`, `port`) and a path prefix. */
export function parseApiBase(apiBase: string = STRIPE_DEFAULT_API_BASE): StripeEndpoint {
  let url: URL;
  try {
    url = new URL(apiBase);
  } catch {
    throw new Error(`STRIPE_API_BASE must be an absolute http(s) URL, got ${JSON.stringify(apiBase)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`STRIPE_API_BASE must use http or https, got ${url.protocol}`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new Error('STRIPE_API_BASE must not carry a query, fragment or credentials');
  }
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  const pathPrefix = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  return {
    protocol,
    // URL keeps IPv6 literals bracketed; Node's http.request wants them bare.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443,
    pathPrefix,
  };
}

/** `true` for live keys (`sk_live_`, `rk_live_`), `false` for test keys; `undefined` when the key says neither. */
export function keyLivemode(secretKey: string): boolean | undefined {
  if (/^[sr]k_live_/.test(secretKey)) return true;
  if (/^[sr]k_test_/.test(secretKey)) return false;
  return undefined;
}
