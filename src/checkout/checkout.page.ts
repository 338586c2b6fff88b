/**
 * The checkout page's HTML (server-rendered skeleton) and its Content-Security-Policy.
 *
 * The page carries no data about the order: the browser loads it with the customer's token (from the URL fragment),
 * so the HTML is the same for every visitor of an order number and leaks nothing. Configuration reaches the script in
 * a `<script type="application/json">` data block (not executable, so `script-src 'self'` stays strict).
 */
import { PaymentChannel } from '../payments/channels';

/**
 * Everything is same-origin: scripts and styles from `/checkout-assets`, the QR code as a `data:` image,
 * GraphQL over HTTP and graphql-ws over `ws:`/`wss:`. No inline script or style, no eval, no frames, no forms posted.
 */
export const CHECKOUT_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self' ws: wss:",
  "worker-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** What the page does with a channel's PaymentSession. */
export type ChannelKind = 'qr' | 'redirect' | 'jsapi' | 'card';

export interface ChannelInfo {
  channel: PaymentChannel;
  label: string;
  group: string;
  kind: ChannelKind;
}

/** The nine channels of the contract, in the order the picker lists them (typed so a new channel must be added). */
const CHANNELS: Record<PaymentChannel, Omit<ChannelInfo, 'channel'>> = {
  [PaymentChannel.WECHAT_NATIVE]: { group: 'WeChat Pay', label: 'Scan a QR code', kind: 'qr' },
  [PaymentChannel.WECHAT_JSAPI]: { group: 'WeChat Pay', label: 'Inside WeChat (JSAPI)', kind: 'jsapi' },
  [PaymentChannel.WECHAT_H5]: { group: 'WeChat Pay', label: 'Mobile browser (H5)', kind: 'redirect' },
  [PaymentChannel.ALIPAY_QR]: { group: 'Alipay', label: 'Scan a QR code', kind: 'qr' },
  [PaymentChannel.ALIPAY_PAGE]: { group: 'Alipay', label: 'Alipay website', kind: 'redirect' },
  [PaymentChannel.ALIPAY_WAP]: { group: 'Alipay', label: 'Alipay mobile website', kind: 'redirect' },
  [PaymentChannel.UNIONPAY_QR]: { group: 'UnionPay', label: 'Scan a QR code', kind: 'qr' },
  [PaymentChannel.UNIONPAY_GATEWAY]: { group: 'UnionPay', label: 'Online banking gateway', kind: 'redirect' },
  [PaymentChannel.STRIPE_CARD]: { group: 'Card', label: 'Credit or debit card (Stripe)', kind: 'card' },
};

export const CHECKOUT_CHANNELS: readonly ChannelInfo[] = (Object.keys(CHANNELS) as PaymentChannel[]).map((channel) => ({
  channel,
  ...CHANNELS[channel],
}));

export interface CheckoutPageInput {
  orderNo: string;
  graphqlPath: string;
  /** The requester's IP address as the service sees it (WECHAT_H5 needs the payer's IP). */
  clientIp: string | null;
  /** Versioned URL of a checkout asset. */
  assetUrl(name: string): string;
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that is safe inside a `<script type="application/json">` block. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function head(title: string, assetUrl: (name: string) => string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${escapeHtml(assetUrl('checkout.css'))}">
</head>`;
}

export function renderCheckoutPage(p: CheckoutPageInput): string {
  const config = {
    orderNo: p.orderNo,
    graphqlPath: p.graphqlPath,
    clientIp: p.clientIp,
    channels: CHECKOUT_CHANNELS,
  };
  return `${head(`Checkout · order ${p.orderNo}`, p.assetUrl)}
<body>
<main class="checkout">
  <header class="top">
    <h1>Checkout</h1>
    <span id="connection" class="connection" data-testid="connection" data-state="idle" role="status" hidden></span>
  </header>
  <p id="notice" class="notice" data-testid="notice" role="alert" hidden></p>
  <p id="loading" class="muted">Loading your order…</p>

  <section id="order" class="card" hidden>
    <div class="order-head">
      <div>Order <strong id="order-no" data-testid="order-no"></strong></div>
      <div>Status <span id="payment-status" class="status" data-testid="payment-status" aria-live="polite"></span></div>
    </div>
    <p id="status-message" class="banner" data-testid="status-message" role="status" hidden></p>
    <table class="items">
      <thead><tr><th scope="col">Item</th><th scope="col" class="num">Qty</th><th scope="col" class="num">Price</th><th scope="col" class="num">Amount</th></tr></thead>
      <tbody id="items" data-testid="items"></tbody>
    </table>
    <dl class="totals">
      <dt>Subtotal</dt><dd id="subtotal" data-testid="subtotal"></dd>
      <dt>Discount</dt><dd id="discount" data-testid="discount"></dd>
      <dt>Shipping</dt><dd id="shipping" data-testid="shipping"></dd>
      <dt class="grand">Total</dt><dd id="total" class="grand" data-testid="total"></dd>
    </dl>
    <p id="expiry" class="expiry" data-testid="expiry" hidden></p>
  </section>

  <section id="pay" class="card" hidden>
    <h2>Pay with</h2>
    <form id="pay-form" novalidate>
      <div id="channels" class="channels" data-testid="channels" role="radiogroup" aria-label="Payment channel"></div>
      <p id="openid-row" class="field" hidden>
        <label for="openid">Your WeChat openid (JSAPI payments run inside WeChat)</label>
        <input id="openid" name="openid" data-testid="openid" autocomplete="off" maxlength="128" spellcheck="false">
      </p>
      <button type="submit" id="pay-button" class="primary" data-testid="pay-button">Pay</button>
    </form>
    <p id="pay-error" class="error" data-testid="pay-error" role="alert" hidden></p>
    <div id="session" class="session" data-testid="session" hidden></div>
    <div class="cancel">
      <button type="button" id="cancel-button" class="link" data-testid="cancel-button">Cancel order</button>
      <span id="cancel-confirm-row" hidden>
        Cancel this order?
        <button type="button" id="cancel-confirm" class="danger" data-testid="cancel-confirm">Yes, cancel it</button>
        <button type="button" id="cancel-abort" class="link">Keep it</button>
      </span>
    </div>
  </section>
</main>
<noscript><p class="notice">The checkout page needs JavaScript.</p></noscript>
<script id="checkout-config" type="application/json">${jsonForScript(config)}</script>
<script src="${escapeHtml(p.assetUrl('graphql-ws.min.js'))}"></script>
<script src="${escapeHtml(p.assetUrl('checkout.js'))}"></script>
</body>
</html>
`;
}

export function renderNotFoundPage(assetUrl: (name: string) => string): string {
  return `${head('Checkout · not found', assetUrl)}
<body>
<main class="checkout">
  <h1>Checkout</h1>
  <p class="notice" data-testid="notice">There is no such order.</p>
</main>
</body>
</html>
`;
}
