/**
 * Pages of the simulated UnionPay gateway (银联在线支付收银台): the cashier the browser lands on after POSTing the
 * front form, and its error and result pages. Self-contained HTML, no scripts: the Pay and Fail buttons submit a
 * plain form, so it works in any browser and from a test with `fetch`.
 */
import { escapeHtml } from '../shared/html';

export const UNIONPAY_BRAND = 'UnionPay (simulator)';
export const UNIONPAY_COLOR = '#e21836';

const STYLE = `*{box-sizing:border-box} body{margin:0;background:#f2f2f2;font-family:-apple-system,"PingFang SC","Helvetica Neue",Arial,sans-serif;color:#222}
main{max-width:520px;margin:0 auto;min-height:100vh;background:#fff}
header{background:${UNIONPAY_COLOR};color:#fff;padding:16px;font-weight:600}
.card{padding:24px;text-align:center}.merchant{color:#555}.amount{font-size:36px;font-weight:600;margin:16px 0}
.row{display:flex;justify-content:space-between;font-size:13px;color:#888;margin-top:6px;gap:12px;word-break:break-all}
form{display:flex;flex-direction:column;gap:10px;padding:0 24px 24px}
button{border:0;border-radius:6px;padding:14px;font-size:16px;cursor:pointer}
button.primary{background:${UNIONPAY_COLOR};color:#fff} button.secondary{background:#fff;border:1px solid #ccc}
.notice{padding:24px;text-align:center}.err{color:#c00}.ok{color:#1a7f37}a{color:${UNIONPAY_COLOR}}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main><header>${escapeHtml(UNIONPAY_BRAND)}</header>
${body}
</main></body></html>`;
}

export interface CashierPageInput {
  merchant: string;
  orderId: string;
  amountText: string;
  expires: string;
  /** Absolute URL the buttons POST to. */
  actionUrl: string;
  cashierRef: string;
  /** Shown instead of the buttons (paid, expired). */
  notice?: string;
}

export function renderCashierPage(p: CashierPageInput): string {
  const actions = p.notice
    ? `<p class="notice" data-testid="notice">${escapeHtml(p.notice)}</p>`
    : `<form method="post" action="${escapeHtml(p.actionUrl)}">
  <input type="hidden" name="ref" value="${escapeHtml(p.cashierRef)}">
  <button type="submit" name="outcome" value="SUCCESS" class="primary" data-testid="pay">Pay</button>
  <button type="submit" name="outcome" value="FAIL" class="secondary" data-testid="fail">Fail</button>
</form>`;
  return page(
    `${UNIONPAY_BRAND} — ${p.orderId}`,
    `<div class="card">
  <div class="merchant" data-testid="merchant">${escapeHtml(p.merchant)}</div>
  <div class="amount" data-testid="amount">${escapeHtml(p.amountText)}</div>
  <div class="row"><span>Order</span><span data-testid="order-id">${escapeHtml(p.orderId)}</span></div>
  <div class="row"><span>Pay before</span><span>${escapeHtml(p.expires)}</span></div>
</div>
${actions}`,
  );
}

/** The gateway refusing a front request: `respCode` and `respMsg` as UnionPay shows them. */
export function renderGatewayError(respCode: string, respMsg: string): string {
  return page(
    `${UNIONPAY_BRAND} — ${respCode}`,
    `<div class="notice err"><p data-testid="resp-code">${escapeHtml(respCode)}</p><p data-testid="resp-msg">${escapeHtml(respMsg)}</p></div>`,
  );
}

/** After a payment attempt without a front return form (failure, or no frontUrl). */
export function renderResultPage(ok: boolean, message: string, backUrl?: string): string {
  const link = backUrl ? `<p><a href="${escapeHtml(backUrl)}" data-testid="back">Back to the merchant</a></p>` : '';
  return page(
    `${UNIONPAY_BRAND} — ${ok ? 'paid' : 'failed'}`,
    `<div class="notice ${ok ? 'ok' : 'err'}"><p data-testid="result">${escapeHtml(message)}</p>${link}</div>`,
  );
}
